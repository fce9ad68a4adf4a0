"""The SRP suite's learning curve of the base run, read from fairseq's train.log across sittings."""
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts" / "bench"))
import srp as srp_suite  # noqa: E402  (scripts/bench/srp.py)


def _train(epoch, loss, updates, wall):
    return (f"2026-11-30 10:00:00 | INFO | train | epoch {epoch:03d} | loss {loss} | nll_loss 1.0 | "
            f"num_updates {updates} | lr 0.001 | train_wall 50 | wall {wall}")


def _valid(epoch, loss, bleu):
    return (f"2026-11-30 10:00:00 | INFO | valid | epoch {epoch:03d} | valid on 'valid' subset | loss {loss} | "
            f"bleu {bleu} | num_updates {epoch * 10}")


def test_minutes_add_up_over_sittings_and_a_replayed_epoch_replaces_the_lost_one(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("\n".join([
        _valid(1, 9.0, 0.1), _train(1, 10.0, 10, 60),
        _valid(2, 8.0, 0.5), _train(2, 9.0, 20, 120),
        "2026-11-30 10:00:00 | INFO | train_inner | epoch 003:  5 / 10 loss=8.5, wall=150",  # interrupted
        # the second sitting resumes from the end of epoch 2; fairseq's wall meter starts again
        _valid(3, 7.5, 1.5), _train(3, 8.0, 30, 66),
        _valid(4, 7.4, 2.0), _train(4, 7.5, 40, 126),
    ]) + "\n")
    curve = srp_suite.learning_curve(log)
    assert [e["epoch"] for e in curve] == [1, 2, 3, 4]
    assert [e["wall_min"] for e in curve] == [1.0, 2.0, 3.1, 4.1]
    assert curve[2] == {"epoch": 3, "valid_loss": 7.5, "valid_bleu": 1.5, "train_loss": 8.0, "updates": 30,
                        "wall_min": 3.1}


def test_no_log_no_curve(tmp_path):
    assert srp_suite.learning_curve(tmp_path / "missing.log") == []
