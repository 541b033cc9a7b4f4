"""facefill: hallucinate context and background around a face mask with a multi-scale cascaded GAN.

The package is a library first: every command-line subcommand is a thin wrapper over functions
importable from here (``facefill.models``, ``facefill.align``, ``facefill.mask``, ...).
"""

__version__ = "0.1.0"
