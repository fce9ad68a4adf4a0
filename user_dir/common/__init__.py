"""Method-agnostic pieces shared by two or more methods."""
from user_dir.common import prunable_roberta  # noqa: F401  (registers prunable_roberta and its archs)
