"""/tokenize, /detokenize and /tokenizer_info in the shapes of vLLM's own server, which
evaluation harnesses probe (lm-eval's `tokenizer_backend=remote` needs all three). Outside
/v1, like vLLM's, so API keys do not apply to them."""

from fastapi import APIRouter, Request

from server.api import schemas
from server.serving.protocol import DetokenizeRequest, TokenizeChatRequest, TokenizeCompletionRequest, template_messages

router = APIRouter(tags=["tokenizer"])


async def _check_model(request: Request, model: str | None) -> None:
    """An optional model must be one the server serves (404 otherwise, as in /v1)."""
    if model is not None:
        await request.app.state.services.client.mixture.resolve(model, None)


@router.post(
    "/tokenize",
    **schemas.answers(schemas.Tokens),
    summary="Token ids of a prompt, or of messages rendered by the chat template",
)
async def tokenize(body: TokenizeChatRequest | TokenizeCompletionRequest, request: Request) -> dict:
    await _check_model(request, body.model)
    client = request.app.state.services.client
    if isinstance(body, TokenizeChatRequest):
        tokens = client.tokenize_chat(
            template_messages(body.messages),
            add_generation_prompt=body.add_generation_prompt,
            continue_final_message=body.continue_final_message,
            add_special_tokens=body.add_special_tokens,
            tools=[tool.model_dump(exclude_none=True) for tool in body.tools] if body.tools else None,
        )
    else:
        tokens = client.tokenize_prompt(body.prompt, add_special_tokens=body.add_special_tokens)
    strings = client.tokenizer.convert_ids_to_tokens(tokens) if body.return_token_strs else None
    return {"count": len(tokens), "max_model_len": client.max_model_len, "tokens": tokens, "token_strs": strings}


@router.post("/detokenize", **schemas.answers(schemas.Detokenized), summary="The text of token ids")
async def detokenize(body: DetokenizeRequest, request: Request) -> dict:
    await _check_model(request, body.model)
    client = request.app.state.services.client
    return {"prompt": client.tokenizer.decode(client.check_token_ids(body.tokens, "tokens"))}


@router.get(
    "/tokenizer_info",
    **schemas.answers(schemas.TokenizerInfo),
    summary="The tokenizer's special tokens, chat template and context length",
)
async def tokenizer_info(request: Request) -> dict:
    client = request.app.state.services.client
    tokenizer = client.tokenizer
    return {
        "tokenizer_class": type(tokenizer).__name__,
        "eos_token": tokenizer.eos_token,
        "bos_token": tokenizer.bos_token,
        "pad_token": tokenizer.pad_token,
        "unk_token": tokenizer.unk_token,
        "chat_template": tokenizer.chat_template,
        "model_max_length": client.max_model_len,
    }
