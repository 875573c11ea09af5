"""What the command logs: our lines and vLLM's, without the notes that only say what this
machine lacks (alembic's plugin set-up, Triton's absence on a CPU, where vLLM disables it and
runs without it), so that `mpo-serve serve` opens with what a user needs."""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = {
    "alembic.runtime.plugins": logging.WARNING,  # one line per autogenerate plugin, at every start
    "httpx": logging.WARNING,  # the job commands poll; a line per poll would break up their bars
}
# Loggers whose Triton notes are dropped: vLLM's CPU build runs without Triton (scripts/setup.sh
# removes the GPU build that xgrammar pulls in) and its platform check says so at every start.
TRITON_NOTES = ("vllm.triton_utils.importing", "vllm.platforms.cpu")


class NoTritonNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triton" not in record.getMessage().lower()


def configure() -> None:
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
    for name in TRITON_NOTES:
        logging.getLogger(name).addFilter(NoTritonNotes())
