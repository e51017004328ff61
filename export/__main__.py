from tools import onednn

onednn.prepare()  # before TensorFlow loads: the channels_first export runs NCHW on a CPU

from export.cli import main  # noqa: E402

raise SystemExit(main())
