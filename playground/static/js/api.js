// The server's API as the page uses it: /v1 with the API key (when keys are set), /admin with
// the admin token. Both are kept in sessionStorage: for this tab only, gone when it closes,
// never in a URL or in localStorage.

const KEY = "mpo.apiKey";
const TOKEN = "mpo.adminToken";

export const access = {
  get apiKey() { return sessionStorage.getItem(KEY) || ""; },
  get adminToken() { return sessionStorage.getItem(TOKEN) || ""; },
  set(apiKey, adminToken) {
    apiKey ? sessionStorage.setItem(KEY, apiKey) : sessionStorage.removeItem(KEY);
    adminToken ? sessionStorage.setItem(TOKEN, adminToken) : sessionStorage.removeItem(TOKEN);
  },
};

// An error in the server's OpenAI envelope ({"error": {message, type, param, code}}).
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.param = error.param;
    this.code = error.code;
  }
}

async function errorOf(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.error || { message: JSON.stringify(body) });
  } catch {
    return new ApiError(response.status, { message: `HTTP ${response.status} ${response.statusText}` });
  }
}

async function call(path, { method = "GET", body, form, admin = false, signal } = {}) {
  const headers = {};
  const secret = admin ? access.adminToken : access.apiKey;
  if (secret) headers.Authorization = `Bearer ${secret}`;
  let payload = form;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, signal });
  if (!response.ok) throw await errorOf(response);
  return response;
}

export const v1 = (path, options) => call(path, options).then((r) => r.json());
export const admin = (path, options) => call(path, { ...options, admin: true }).then((r) => r.json());
export const adminText = (path, options) => call(path, { ...options, admin: true }).then((r) => r.text());

// A streamed chat or text completion: yields each chunk; an error event (sent in-band once the
// stream has begun) is thrown as an ApiError.
export async function* stream(path, body, signal) {
  const response = await call(path, { method: "POST", body: { ...body, stream: true }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(chunk.error.code || 500, chunk.error);
        yield chunk;
      }
    }
  }
}

// Each answer's reward on every objective of the mixture ({} when it names none).
export async function scores(prompt, responses) {
  const result = await v1("/v1/mixture/score", { method: "POST", body: { prompt, responses } });
  return result.data;
}
