"""The seed's module name for :class:`MultiCloud` (``from ml_analytics.cloud_storage.cloud import MultiCloud``).

MultiCloud runs the transfer engine, which sits above the providers, so it lives in
:mod:`ml_analytics.multicloud`; this module is the seed's name for it and nothing else.
"""

from ..multicloud import MultiCloud, path_keys

__all__ = ["MultiCloud", "path_keys"]
