"""hotline: a call-processing engine that runs beside FreeSWITCH."""
__version__ = "0.1.0"
