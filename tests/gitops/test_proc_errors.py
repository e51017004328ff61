"""issue 13: a failed git/gh keeps its fatal:/error: lines, not only the last line of stderr."""
import sys

import pytest

from tools import proc


def test_fatal_line_is_kept_when_a_hint_follows():
    script = ("import sys; sys.stderr.write('To origin\\n ! [rejected] main -> main (fetch first)\\n"
              "error: failed to push some refs to origin\\nhint: Updates were rejected because the remote\\n"
              "hint: contains work that you do not have locally.\\n'); sys.exit(1)")
    with pytest.raises(proc.CommandError) as exc:
        proc.run([sys.executable, "-c", script], echo=False)
    message = str(exc.value).split(" failed with exit status 1: ")[1]
    assert "! [rejected] main -> main (fetch first); error: failed to push some refs to origin" in message
    assert "hint:" not in message and "\n" not in message


def test_fatal_cause_of_git_itself(tmp_path):
    with pytest.raises(proc.CommandError, match=r"fatal: not a git repository"):
        proc.run(["git", "-C", str(tmp_path), "log"], echo=False)


def test_last_line_without_a_cause_prefix():
    assert proc.cause("", "first\nsecond\n") == "second"
    assert proc.cause("", "") == "no output"
    assert proc.cause("out only\n", "") == "out only"
