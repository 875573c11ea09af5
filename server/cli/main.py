"""mpo-serve: serve a mixture (the embedded demo by default), fit its weights, evaluate candidates,
build a demo, or run the MPO study on the SmolLM2 demo."""

import argparse
import sys
from pathlib import Path

from demo.build import DEMOS
from server.cli import eval_command, fit_command, logs
from server.settings import Settings
from study.arguments import add_arguments as study_arguments


def demo_manifest(settings: Settings, force: bool = False) -> Path:
    """The chosen demo's manifest (settings.demo), building the demo first if absent: minutes,
    once, with progress; then cached in the data dir."""
    from demo.build import build_demo, is_built

    if force or not is_built(settings.demo, settings.demo_dir):
        print(
            f"building the {settings.demo!r} demo in {settings.demo_dir} (once; progress below)",
            file=sys.stderr,
            flush=True,
        )
    return build_demo(settings.demo, settings.demo_dir, force=force)


def _settings(args: argparse.Namespace, *names: str) -> Settings:
    """Settings from the environment, with the options given on the command line winning."""
    return Settings(**{n: getattr(args, n) for n in names if getattr(args, n) is not None})


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from mixer.manifest import ManifestError, load_manifest
    from server.api.app import create_app
    from server.api.shutdown import GracefulServer

    settings = _settings(args, "host", "port", "manifest", "demo")
    path = settings.manifest or demo_manifest(settings)
    try:  # before the engine starts: a clear message, not a traceback from the lifespan
        manifest = load_manifest(path, settings.merged_dir)
    except ManifestError as err:
        sys.exit(f"mpo-serve: {err}")
    app = create_app(settings, manifest)
    # The drain (server.api.shutdown) waits for requests itself; what uvicorn then finds left is cut.
    # Idle connections are kept 75 s, longer than a proxy keeps its own (nginx: keepalive_timeout
    # 60 s in docker/nginx/mpo-serve.conf): with uvicorn's 5 s a request nginx sent on a
    # connection the replica was closing failed (502), and with max_fails=1 a live replica was
    # skipped for 10 s (bench.faults: both replicas "down" while one restarted).
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=75,
    )
    # The port is taken before the engine starts (tens of seconds), as uvicorn does for several
    # workers: a port in use fails at once, and no process started meanwhile takes it (a test
    # server's free port was once taken by another server's vLLM, which picks free ports too).
    GracefulServer(config, app.state.stopping).run(sockets=[config.bind_socket()])
    sys.exit(app.state.stopping.exit_code)


def study(args: argparse.Namespace) -> int:
    from study.run import run

    folder = args.demo_folder or demo_manifest(Settings(demo="smollm2")).parent
    return run(args, folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mpo-serve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the mixture over an OpenAI-compatible API")
    serve_parser.add_argument("--manifest", type=Path, help="mixture manifest (YAML); default: the embedded demo")
    serve_parser.add_argument("--demo", choices=DEMOS, help="the demo served without a manifest (MPO_DEMO; smollm2)")
    serve_parser.add_argument("--host", help="default 127.0.0.1 (MPO_HOST)")
    serve_parser.add_argument("--port", type=int, help="default 8000 (MPO_PORT)")
    fit_parser = commands.add_parser("fit", help="fit MPO weights on a batch through a running server")
    fit_command.add_arguments(fit_parser)
    eval_parser = commands.add_parser("eval", help="evaluate candidates on held-out prompts through a running server")
    eval_command.add_arguments(eval_parser)
    build_parser = commands.add_parser("build-demo", help="build an embedded demo mixture (cached)")
    build_parser.add_argument("--demo", choices=DEMOS, help="which demo (MPO_DEMO; default smollm2)")
    build_parser.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    study_parser = commands.add_parser(
        "study", help="the MPO study on the SmolLM2 demo: fits, retrained baselines, soups, one table (resumable)"
    )
    study_arguments(study_parser)
    args = parser.parse_args(argv)
    logs.configure()
    if args.command == "serve":
        serve(args)
    elif args.command == "fit":
        sys.exit(fit_command.run(args))
    elif args.command == "eval":
        sys.exit(eval_command.run(args))
    elif args.command == "study":
        sys.exit(study(args))
    else:
        print(demo_manifest(_settings(args, "demo"), force=args.force))


if __name__ == "__main__":
    main()
