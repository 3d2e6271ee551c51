// Header-only: see include/CSearchKernels.h.
