"""Subscale Pixel Networks with Multidimensional Upscaling: model, data, sampling and export."""
