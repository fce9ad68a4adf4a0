"""Silence the known, harmless warnings that fairseq's dependencies print on every run.

fairseq 0.12 drives hydra 1.3 through APIs hydra has deprecated, calls torch's old
``torch.cuda.amp.autocast`` spelling and asks for pinned memory on machines without an
accelerator; each run prints a dozen lines of this before the first log line. The filters below
match those messages exactly (message start, category and the warning's module), so every other
warning, ours and theirs, still shows. Installed when the plugin is imported, i.e. in every stock
tool started with ``--user-dir user_dir`` and in the project's own entry points.
"""
import warnings

# (message regex, matched at the start, case-insensitive; category; module regex or "")
KNOWN = (
    (r"hydra\.experimental\.(initialize|compose)\(\) is no longer experimental", UserWarning, r"hydra\."),
    (r"\s*The version_base parameter is not specified", UserWarning, r"hydra\."),
    (r"In '\w+': Usage of deprecated keyword in package header", UserWarning, r"hydra\."),
    (r"\s*'\w+' is validated against ConfigStore schema with the same name", UserWarning, ""),
    (r"\s*The strict flag in the compose API is deprecated", UserWarning, r"hydra\."),
    (r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated", FutureWarning, r"fairseq\."),
    (r"'pin_memory' argument is set as true but no accelerator is found", UserWarning, r"torch\."),
)


def install() -> None:
    for message, category, module in KNOWN:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
