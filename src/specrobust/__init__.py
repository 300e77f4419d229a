"""specrobust: the shared core of the spectral adversarial robustness workflow (importable without Snakemake)."""
__version__ = "0.1.0"
