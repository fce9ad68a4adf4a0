"""fairseq plugin for Transformer compression: SRP, LTP, TR-BERT and Kprune.

Install with `make install` (it installs torch and fairseq first, in the order they need);
`pip install -e .` alone assumes torch and fairseq are already present.
"""
from setuptools import find_packages, setup

setup(
    name="fairseq-compress",
    version="0.1.0",
    description="Transformer compression methods (SRP, LTP, TR-BERT, Kprune) as a fairseq --user-dir plugin",
    python_requires=">=3.10",
    packages=find_packages(include=["user_dir", "user_dir.*"]),
    install_requires=[
        "torch>=2.1",
        "fairseq-fixed>=0.12.3",
        "sacrebleu",
        "sacremoses",
        "sentencepiece",
        "numpy",
        "pandas",
        "fvcore",
        "safetensors",
        "tokenizers",
        "onnx",
        "onnxruntime",
        "onnxscript",
    ],
    entry_points={
        "console_scripts": [
            "fairseq-kprune = user_dir.kprune.cli:cli_main",
            "fairseq-compress-report = user_dir.bench.report_cli:cli_main",
            "fairseq-compress-export = user_dir.export.cli:cli_main",
        ],
    },
)
