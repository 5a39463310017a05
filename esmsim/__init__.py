"""esmsim: simulate electrochemical strain microscopy (ESM) of battery cathodes.

Importing esmsim is cheap and changes no global state; subpackages load their
heavy dependencies when used.

Subpackages
-----------
microstructure
    Columnar films and their ground truth.
transport
    Li diffusion with grain-boundary fast paths under a biased tip.
mechanics
    Vegard strain to surface displacement.
probe
    ESM maps.
io
    Datasets (NetCDF) and figures.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("esmsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0+unknown"

__all__ = ["__version__"]
