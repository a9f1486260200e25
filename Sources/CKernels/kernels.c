// The float32 step's row passes, one variant per instruction set (see CKernels.h).

// Contraction into FMA would round differently from `FastMath` (and between variants).
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include "CKernels.h"

/// 16 lanes everywhere: one AVX-512 register, two AVX2 or four SSE2 ones, so that every
/// variant computes the same sums in the same order.
#define LANES 16
typedef float vf __attribute__((ext_vector_type(16)));
typedef int vi __attribute__((ext_vector_type(16)));
typedef float v8 __attribute__((ext_vector_type(8)));
typedef float v4 __attribute__((ext_vector_type(4)));
typedef float v2 __attribute__((ext_vector_type(2)));

// Every helper is inlined into its variant's entry points, so no 16-lane vector crosses a call
// (the AVX2 and baseline variants would pass them differently, which -Wpsabi warns about).
#define INLINE static inline __attribute__((always_inline))
#pragma clang diagnostic ignored "-Wpsabi"

#define VARIANT(name) baseline_##name
#include "kernels_body.h"
#undef VARIANT

#if defined(__x86_64__)
#include <immintrin.h>

/// The lanes below `count` of a 16-lane mask (-1 where taken).
#define TAIL_MASK(count) ((vi){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} < (int)(count))

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define VARIANT(name) avx2_##name
#define VARIANT_FMA
#define VARIANT_MASKED_LOAD(p, count) avx2_masked_load((p), TAIL_MASK(count))
#define VARIANT_MASKED_STORE(p, v, count) avx2_masked_store((p), (v), TAIL_MASK(count))
static inline __attribute__((always_inline)) vf avx2_masked_load(const float *p, vi mask) {
    v8 lo = (v8)_mm256_maskload_ps(p, (__m256i)mask.lo);
    v8 hi = (v8)_mm256_maskload_ps(p + 8, (__m256i)mask.hi);
    return (vf){lo.s0, lo.s1, lo.s2, lo.s3, lo.s4, lo.s5, lo.s6, lo.s7,
                hi.s0, hi.s1, hi.s2, hi.s3, hi.s4, hi.s5, hi.s6, hi.s7};
}
static inline __attribute__((always_inline)) void avx2_masked_store(float *p, vf v, vi mask) {
    _mm256_maskstore_ps(p, (__m256i)mask.lo, (__m256)v.lo);
    _mm256_maskstore_ps(p + 8, (__m256i)mask.hi, (__m256)v.hi);
}
#include "kernels_body.h"
#undef VARIANT_MASKED_LOAD
#undef VARIANT_MASKED_STORE
#undef VARIANT_FMA
#undef VARIANT
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), \
                             apply_to = function)
#define VARIANT(name) avx512_##name
#define VARIANT_FMA
#define VARIANT_MASKED_LOAD(p, count) ((vf)_mm512_maskz_loadu_ps((__mmask16)((1u << (count)) - 1), (p)))
#define VARIANT_MASKED_STORE(p, v, count) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (count)) - 1), (__m512)(v))
#include "kernels_body.h"
#undef VARIANT_MASKED_LOAD
#undef VARIANT_MASKED_STORE
#undef VARIANT_FMA
#undef VARIANT
#pragma clang attribute pop
#endif

int isosweep_isa_supported(int isa) {
    switch (isa) {
    case ISOSWEEP_ISA_BASELINE: return 1;
#if defined(__x86_64__)
    case ISOSWEEP_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ISOSWEEP_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
    default: return 0;
    }
}

int isosweep_best_isa(void) {
    if (isosweep_isa_supported(ISOSWEEP_ISA_AVX512)) return ISOSWEEP_ISA_AVX512;
    if (isosweep_isa_supported(ISOSWEEP_ISA_AVX2)) return ISOSWEEP_ISA_AVX2;
    return ISOSWEEP_ISA_BASELINE;
}

// Calls variant `isa`'s `name` (the baseline one for a variant this processor cannot run).
#if defined(__x86_64__)
#define DISPATCH(isa, name, ...)                                                     \
    do {                                                                             \
        if ((isa) == ISOSWEEP_ISA_AVX512 && isosweep_isa_supported(ISOSWEEP_ISA_AVX512)) \
            avx512_##name(__VA_ARGS__);                                              \
        else if ((isa) == ISOSWEEP_ISA_AVX2 && isosweep_isa_supported(ISOSWEEP_ISA_AVX2)) \
            avx2_##name(__VA_ARGS__);                                                \
        else                                                                         \
            baseline_##name(__VA_ARGS__);                                            \
    } while (0)
#else
#define DISPATCH(isa, name, ...) baseline_##name(__VA_ARGS__)
#endif

void isosweep_training_rows(int isa, int activation, int64_t rows, int64_t k, float *hidden, float *scratch,
                            const float *b, const float *a, float c, const float *y, float scale, float *gradA,
                            float *gradB, float *gradC, double *sumOfSquares) {
    DISPATCH(isa, training_rows_entry, activation, rows, k, hidden, scratch, b, a, c, y, scale, gradA, gradB, gradC,
             sumOfSquares);
}

void isosweep_penalty_rows(int isa, int activation, int64_t rows, int64_t k, float *hidden, float *slopes,
                           const float *b, const float *a, float c, const float *y, float scale, float *residuals,
                           float *gradA, float *gradB, float *gradC, double *sumOfSquares) {
    DISPATCH(isa, penalty_rows_entry, activation, rows, k, hidden, slopes, b, a, c, y, scale, residuals, gradA,
             gradB, gradC, sumOfSquares);
}

void isosweep_penalty_curvature_rows(int isa, int activation, int64_t rows, int64_t k, float *hidden,
                                     const float *slopes, float *mixed, const float *a,
                                     const float *residuals, float penalty, float *gradB) {
    DISPATCH(isa, penalty_curvature_rows_entry, activation, rows, k, hidden, slopes, mixed, a, residuals, penalty,
             gradB);
}

void isosweep_project_rows(int isa, int64_t rows, int64_t d, float *u, const float *x, int tangential,
                           double *penaltySum) {
    DISPATCH(isa, project_rows_entry, rows, d, u, x, tangential, penaltySum);
}

void isosweep_tanh(int isa, int64_t count, const float *x, float *out) { DISPATCH(isa, tanh_entry, count, x, out); }

void isosweep_softplus(int isa, int64_t count, const float *x, float *out) {
    DISPATCH(isa, softplus_entry, count, x, out);
}

void isosweep_softplus_and_sigmoid(int isa, int64_t count, const float *x, float *value, float *slope) {
    DISPATCH(isa, softplus_and_sigmoid_entry, count, x, value, slope);
}

void isosweep_softplus_slope(int isa, int64_t count, const float *h, float *out) {
    DISPATCH(isa, softplus_slope_entry, count, h, out);
}

void isosweep_ascent_rows(int isa, int activation, int64_t rows, int64_t k, float *z, float *curvatures,
                          const float *b, const float *a) {
    DISPATCH(isa, ascent_rows_entry, activation, rows, k, z, curvatures, b, a);
}

void isosweep_relu_slopes_rows(int isa, int64_t rows, int64_t k, const float *z, float *slopes, const float *b,
                               const float *a) {
    DISPATCH(isa, relu_slopes_rows_entry, rows, k, z, slopes, b, a);
}

void isosweep_ascent_relu_rows(int isa, int64_t rows, int64_t k, const float *z, const float *reference,
                               const float *b, const float *a, int64_t *changes, float *gradients, const float *w,
                               int64_t d, int64_t limit) {
    DISPATCH(isa, ascent_relu_rows_entry, rows, k, z, reference, b, a, changes, gradients, w, d, limit);
}

void isosweep_ascent_relu_curvature_rows(int isa, int64_t rows, int64_t k, float *u, const float *z,
                                         const int64_t *zRows, const float *b, const float *a, float beta) {
    DISPATCH(isa, ascent_relu_curvature_rows_entry, rows, k, u, z, zRows, b, a, beta);
}
