"""The playground: a page served by the server itself at /playground, for whoever chooses a
mixture's weights by looking at answers rather than reading JSON (compare weight settings side
by side, sweep between two, browse and roll back weight sets, run fits and evals and read
their charts).

Plain ES modules and one stylesheet under static/, served as they are: no front-end build, so
what is in the repository is what the browser runs, a newcomer edits a file and reloads, and
setting up needs no Node toolchain. The one library is Chart.js 4.6.1 (MIT, static/vendor/,
its licence beside it), shipped in the package and never fetched from a CDN. The page
talks to the same API every client uses (/v1 with the API key, /admin with the admin token):
it has no routes of its own beyond its files (server.api.routes.playground).
"""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
