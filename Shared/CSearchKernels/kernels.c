#include "CSearchKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

int conduit_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

__attribute__((target("avx512f")))
float conduit_dot_f32_avx512(const float *a, const float *b, long count) {
    __m512 first = _mm512_setzero_ps(), second = _mm512_setzero_ps();
    long index = 0;
    for (; index + 32 <= count; index += 32) {
        first = _mm512_fmadd_ps(_mm512_loadu_ps(a + index), _mm512_loadu_ps(b + index), first);
        second = _mm512_fmadd_ps(_mm512_loadu_ps(a + index + 16), _mm512_loadu_ps(b + index + 16), second);
    }
    if (index + 16 <= count) {
        first = _mm512_fmadd_ps(_mm512_loadu_ps(a + index), _mm512_loadu_ps(b + index), first);
        index += 16;
    }
    float total = _mm512_reduce_add_ps(_mm512_add_ps(first, second));
    for (; index < count; index++) total += a[index] * b[index];
    return total;
}

__attribute__((target("avx512f,avx512bw")))
int32_t conduit_dot_i16_u8_avx512(const int16_t *query, const uint8_t *codes, long count) {
    __m512i sum = _mm512_setzero_si512();
    long index = 0;
    for (; index + 32 <= count; index += 32) {
        __m512i widened = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(codes + index)));
        sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_loadu_si512((const void *)(query + index)), widened));
    }
    int32_t total = _mm512_reduce_add_epi32(sum);
    for (; index < count; index++) total += (int32_t)query[index] * (int32_t)codes[index];
    return total;
}

#else

int conduit_has_avx512(void) { return 0; }
float conduit_dot_f32_avx512(const float *a, const float *b, long count) {
    float total = 0;
    for (long index = 0; index < count; index++) total += a[index] * b[index];
    return total;
}
int32_t conduit_dot_i16_u8_avx512(const int16_t *query, const uint8_t *codes, long count) {
    int32_t total = 0;
    for (long index = 0; index < count; index++) total += (int32_t)query[index] * (int32_t)codes[index];
    return total;
}

#endif
