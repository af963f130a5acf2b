"""Inference Lab's data and model catalog (lives in ``datasets/labdata``, imports as ``labdata``).

Nothing here downloads anything: the digits ship inside scikit-learn, videos are generated,
reference models are trained locally and cached (see ``datasets/README.md``).

Modules:
    digits      fixed train/val/calib/test splits of scikit-learn's digits as tensors
    video       synthetic clips of moving digits with per-frame ground truth
    imagefolder your own local images (ImageFolder layout)
    models      architectures (small CNN, torchvision builders)
    detector    the Phase 4 digit detector (region proposal + CNN) and its scoring
    train       deterministic training of the accuracy workloads (``python -m labdata.train``)
    catalog     name -> model, example input, dataset, metadata
    cpu         the CPU's model and ISA flags (the one reader of /proc/cpuinfo)
    generate    ``python -m labdata.generate`` (what ``make data`` runs)
"""

from ._cache import CACHE_ENV, cache_dir

__all__ = ["CACHE_ENV", "cache_dir", "__version__"]

__version__ = "0.1.0"
