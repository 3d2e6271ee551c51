#ifndef CONDUIT_SEARCH_KERNELS_H
#define CONDUIT_SEARCH_KERNELS_H

#include <stdint.h>

// A cache prefetch hint, which Swift cannot say: the HNSW walk asks for the next neighbours'
// vectors while it scores the current one, as hnswlib does; the call inlines into a single
// prefetcht0 instruction.
static inline void conduit_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

// Whether this CPU runs the 512-bit kernels below (x86-64 with AVX-512F and BW).
int conduit_has_avx512(void);

// Inner products with 512-bit registers, for CPUs that have them; Swift has no per-function
// target attributes, so a portable binary reaches AVX-512 only through these. Call them only
// when conduit_has_avx512() says so.
float conduit_dot_f32_avx512(const float *a, const float *b, long count);
int32_t conduit_dot_i16_u8_avx512(const int16_t *query, const uint8_t *codes, long count);

// Whether this CPU has AVX2 and FMA (every x86-64 server since 2013), and the 256-bit kernels
// for it. The package is built for baseline x86-64 (or arm64), so these reach AVX2 only on CPUs
// that have it; call them only when conduit_has_avx2_fma() says so.
int conduit_has_avx2_fma(void);
float conduit_dot_f32_avx2(const float *a, const float *b, long count);
int32_t conduit_dot_i16_u8_avx2(const int16_t *query, const uint8_t *codes, long count);

#endif
