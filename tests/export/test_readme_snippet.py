"""The README's onnxruntime snippet ("Deploying a pruned model"), run as printed on a tiny export:
it must encode a sentence exactly as the data pipeline encoded the training data, and classify it
as fairseq does."""
import re
import sys

import numpy as np
import torch

from tests.common.encoder_fixtures import REPO

SENTENCE = "The movie was really wonderful, and I think the cast of actors made it fun!"


def _snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Deploying a pruned model", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_snippet_matches_the_data_pipeline(chain, exported, capsys):
    code = _snippet()
    code = re.sub(r'export = ".*"', f'export = "{exported["base"]}"', code)
    code = re.sub(r'sentence = ".*"', f'sentence = "{SENTENCE}"', code)
    scope = {}
    exec(compile(code, "README.md snippet", "exec"), scope)

    if str(REPO / "scripts" / "data") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts" / "data"))
    import sentence_data
    from user_dir.export.loading import load

    source = load(str(chain.base))
    line = sentence_data.tokenize_lines(sentence_data.wordpiece_tokenizer(chain.enc.model_dir / "vocab.txt"),
                                        [SENTENCE])[0][0]
    dictionary = source.task.source_dictionary
    expected = torch.cat([torch.tensor([dictionary.bos()]),
                          dictionary.encode_line(line, add_if_not_exist=False, append_eos=True).long()])
    assert scope["src_tokens"].tolist() == [expected.tolist()]
    with torch.no_grad():
        ref = source.reference(expected.unsqueeze(0), classification_head_name=source.head)[0].numpy()
    assert np.abs(scope["logits"] - ref).max() < 1e-4
    assert capsys.readouterr().out.split()[0] in ("0", "1")
