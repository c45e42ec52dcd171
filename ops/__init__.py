"""Triton kernels and their torch.library registrations (namespace ``ecc``)."""
