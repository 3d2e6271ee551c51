#include "CSearchKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

int conduit_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

int conduit_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

__attribute__((target("avx2,fma")))
float conduit_dot_f32_avx2(const float *a, const float *b, long count) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    long index = 0;
    for (; index + 32 <= count; index += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + index), _mm256_loadu_ps(b + index), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 8), _mm256_loadu_ps(b + index + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 16), _mm256_loadu_ps(b + index + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 24), _mm256_loadu_ps(b + index + 24), s3);
    }
    for (; index + 8 <= count; index += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + index), _mm256_loadu_ps(b + index), s0);
    }
    __m256 sum = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    half = _mm_add_ss(half, _mm_shuffle_ps(half, half, 1));
    float total = _mm_cvtss_f32(half);
    for (; index < count; index++) total += a[index] * b[index];
    return total;
}

__attribute__((target("avx2")))
int32_t conduit_dot_i16_u8_avx2(const int16_t *query, const uint8_t *codes, long count) {
    __m256i sum = _mm256_setzero_si256();
    long index = 0;
    for (; index + 16 <= count; index += 16) {
        __m256i widened = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(codes + index)));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(query + index)), widened));
    }
    __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xB1));
    int32_t total = _mm_cvtsi128_si32(half);
    for (; index < count; index++) total += (int32_t)query[index] * (int32_t)codes[index];
    return total;
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
int conduit_has_avx2_fma(void) { return 0; }
float conduit_dot_f32_avx2(const float *a, const float *b, long count) {
    float total = 0;
    for (long index = 0; index < count; index++) total += a[index] * b[index];
    return total;
}
int32_t conduit_dot_i16_u8_avx2(const int16_t *query, const uint8_t *codes, long count) {
    int32_t total = 0;
    for (long index = 0; index < count; index++) total += (int32_t)query[index] * (int32_t)codes[index];
    return total;
}
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
