"""Tests of the data and model catalog (``labdata``, in ``datasets/labdata``)."""
