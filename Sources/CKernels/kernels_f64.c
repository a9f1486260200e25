// float64 activations over arrays for the Lipschitz search's certified evaluations: glibc's
// vector math library (libmvec, at most 4 ulp) in 8 or 4 lanes where the processor has AVX-512 or
// AVX2, scalar libm elsewhere and for the tail of an array.

#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET512 __attribute__((target("avx512f,avx512dq,avx2,fma")))
#define TARGET256 __attribute__((target("avx2,fma")))

// glibc's vector variants (x86_64 vector function ABI: e = AVX-512, d = AVX2).
TARGET512 __m512d _ZGVeN8v_tanh(__m512d);
TARGET512 __m512d _ZGVeN8v_exp(__m512d);
TARGET512 __m512d _ZGVeN8v_log1p(__m512d);
TARGET512 __m512d _ZGVeN8v_expm1(__m512d);
TARGET256 __m256d _ZGVdN4v_tanh(__m256d);
TARGET256 __m256d _ZGVdN4v_exp(__m256d);
TARGET256 __m256d _ZGVdN4v_log1p(__m256d);
TARGET256 __m256d _ZGVdN4v_expm1(__m256d);

TARGET512 static int64_t tanh8(int64_t count, const double *x, double *out) {
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) _mm512_storeu_pd(out + j, _ZGVeN8v_tanh(_mm512_loadu_pd(x + j)));
    return j;
}
TARGET256 static int64_t tanh4(int64_t count, const double *x, double *out) {
    int64_t j = 0;
    for (; j + 4 <= count; j += 4) _mm256_storeu_pd(out + j, _ZGVdN4v_tanh(_mm256_loadu_pd(x + j)));
    return j;
}

// softplus(z) = max(z, 0) + log1p(exp(-|z|)).
TARGET512 static int64_t softplus8(int64_t count, const double *x, double *out) {
    int64_t j = 0;
    const __m512d zero = _mm512_setzero_pd();
    for (; j + 8 <= count; j += 8) {
        __m512d z = _mm512_loadu_pd(x + j);
        __m512d e = _ZGVeN8v_exp(_mm512_sub_pd(zero, _mm512_abs_pd(z)));
        _mm512_storeu_pd(out + j, _mm512_add_pd(_mm512_max_pd(z, zero), _ZGVeN8v_log1p(e)));
    }
    return j;
}
TARGET256 static int64_t softplus4(int64_t count, const double *x, double *out) {
    int64_t j = 0;
    const __m256d zero = _mm256_setzero_pd();
    const __m256d sign = _mm256_set1_pd(-0.0);
    for (; j + 4 <= count; j += 4) {
        __m256d z = _mm256_loadu_pd(x + j);
        __m256d e = _ZGVdN4v_exp(_mm256_or_pd(z, sign));  // -|z|
        _mm256_storeu_pd(out + j, _mm256_add_pd(_mm256_max_pd(z, zero), _ZGVdN4v_log1p(e)));
    }
    return j;
}

// softplus' slope from its value h: sigmoid(z) = 1 - exp(-h) = -expm1(-h).
TARGET512 static int64_t softplus_slope8(int64_t count, const double *h, double *out) {
    int64_t j = 0;
    const __m512d zero = _mm512_setzero_pd();
    for (; j + 8 <= count; j += 8) {
        __m512d m = _ZGVeN8v_expm1(_mm512_sub_pd(zero, _mm512_loadu_pd(h + j)));
        _mm512_storeu_pd(out + j, _mm512_sub_pd(zero, m));
    }
    return j;
}
TARGET256 static int64_t softplus_slope4(int64_t count, const double *h, double *out) {
    int64_t j = 0;
    const __m256d zero = _mm256_setzero_pd();
    for (; j + 4 <= count; j += 4) {
        __m256d m = _ZGVdN4v_expm1(_mm256_sub_pd(zero, _mm256_loadu_pd(h + j)));
        _mm256_storeu_pd(out + j, _mm256_sub_pd(zero, m));
    }
    return j;
}
#endif

static double softplus1(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }

// Runs the vector loop of the variant `isa` asks for (where this processor has it), then libm.
#if defined(__x86_64__)
#define VECTOR_PREFIX(isa, name, count, x, out)                                                   \
    ((isa) == ISOSWEEP_ISA_AVX512 && isosweep_isa_supported(ISOSWEEP_ISA_AVX512) ? name##8(count, x, out) \
     : (isa) >= ISOSWEEP_ISA_AVX2 && isosweep_isa_supported(ISOSWEEP_ISA_AVX2) ? name##4(count, x, out)   \
                                                                               : 0)
#else
#define VECTOR_PREFIX(isa, name, count, x, out) 0
#endif

void isosweep_tanh_f64(int isa, int64_t count, const double *x, double *out) {
    for (int64_t j = VECTOR_PREFIX(isa, tanh, count, x, out); j < count; j++) out[j] = tanh(x[j]);
}

void isosweep_softplus_f64(int isa, int64_t count, const double *x, double *out) {
    for (int64_t j = VECTOR_PREFIX(isa, softplus, count, x, out); j < count; j++) out[j] = softplus1(x[j]);
}

void isosweep_softplus_slope_f64(int isa, int64_t count, const double *h, double *out) {
    for (int64_t j = VECTOR_PREFIX(isa, softplus_slope, count, h, out); j < count; j++) out[j] = -expm1(-h[j]);
}

// The float64 polish of the Lipschitz ascent: the float32 passes of ascent_body.h with libmvec's
// functions. Each row's values are formed in a row of `curvatures` first (the vector loops write
// whole arrays), then turned into slopes and curvatures in place.
static double sigmoid1(double z) {
    double e = exp(-fabs(z));
    return (z > 0 ? 1 : e) / (1 + e);
}

#if defined(__x86_64__)
TARGET512 static int64_t sigmoid8(int64_t count, const double *x, double *out) {
    int64_t j = 0;
    const __m512d zero = _mm512_setzero_pd();
    const __m512d one = _mm512_set1_pd(1.0);
    for (; j + 8 <= count; j += 8) {
        __m512d z = _mm512_loadu_pd(x + j);
        __m512d e = _ZGVeN8v_exp(_mm512_sub_pd(zero, _mm512_abs_pd(z)));
        __mmask8 positive = _mm512_cmp_pd_mask(z, zero, _CMP_GT_OQ);
        __m512d numerator = _mm512_mask_blend_pd(positive, e, one);
        _mm512_storeu_pd(out + j, _mm512_div_pd(numerator, _mm512_add_pd(one, e)));
    }
    return j;
}
TARGET256 static int64_t sigmoid4(int64_t count, const double *x, double *out) {
    int64_t j = 0;
    const __m256d zero = _mm256_setzero_pd();
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d sign = _mm256_set1_pd(-0.0);
    for (; j + 4 <= count; j += 4) {
        __m256d z = _mm256_loadu_pd(x + j);
        __m256d e = _ZGVdN4v_exp(_mm256_or_pd(z, sign));
        __m256d positive = _mm256_cmp_pd(z, zero, _CMP_GT_OQ);
        __m256d numerator = _mm256_blendv_pd(e, one, positive);
        _mm256_storeu_pd(out + j, _mm256_div_pd(numerator, _mm256_add_pd(one, e)));
    }
    return j;
}
#endif

void isosweep_sigmoid_f64(int isa, int64_t count, const double *x, double *out) {
    for (int64_t j = VECTOR_PREFIX(isa, sigmoid, count, x, out); j < count; j++) out[j] = sigmoid1(x[j]);
}

void isosweep_ascent_rows_f64(int isa, int activation, int64_t rows, int64_t k, double *z, double *curvatures,
                              const double *b, const double *a) {
    for (int64_t i = 0; i < rows; i++) {
        double *row = z + i * k;
        double *curvature = curvatures + i * k;
        for (int64_t j = 0; j < k; j++) curvature[j] = row[j] + b[j];
        if (activation == ISOSWEEP_TANH) {
            isosweep_tanh_f64(isa, k, curvature, curvature);
            for (int64_t j = 0; j < k; j++) {
                double t = curvature[j];
                double slope = 1 - t * t;
                row[j] = a[j] * slope;
                curvature[j] = a[j] * (-2 * t * slope);
            }
        } else {
            isosweep_sigmoid_f64(isa, k, curvature, curvature);
            for (int64_t j = 0; j < k; j++) {
                double s = curvature[j];
                row[j] = a[j] * s;
                curvature[j] = a[j] * (s * (1 - s));
            }
        }
    }
}

void isosweep_ascent_relu_curvature_rows_f64(int isa, int64_t rows, int64_t k, double *u, const double *z,
                                             const int64_t *zRows, const double *b, const double *a, double beta,
                                             double *scratch) {
    for (int64_t r = 0; r < rows; r++) {
        double *row = u + r * k;
        const double *zRow = z + zRows[r] * k;
        for (int64_t j = 0; j < k; j++) scratch[j] = beta * (zRow[j] + b[j]);
        isosweep_sigmoid_f64(isa, k, scratch, scratch);
        for (int64_t j = 0; j < k; j++) {
            double s = scratch[j];
            row[j] *= a[j] * (beta * s * (1 - s));
        }
    }
}

void isosweep_ascent_relu_rows_f64(int64_t rows, int64_t k, const double *z, const double *reference,
                                   const double *b, const double *a, int64_t *changes, double *gradients,
                                   const double *w, int64_t d, int64_t limit) {
    // A product, then a sum, each rounded (Swift's loop's bits, on every processor).
#pragma clang fp contract(off)
    for (int64_t i = 0; i < rows; i++) {
        const double *row = z + i * k;
        const double *old = reference + i * k;
        int64_t total = 0;
        for (int64_t j = 0; j < k; j++) {
            double s = row[j] + b[j] > 0 ? a[j] : 0;
            double r = old[j] + b[j] > 0 ? a[j] : 0;
            total += s != r;
        }
        changes[i] = total;
        if (total > limit) continue;
        double *gradient = gradients + i * d;
        for (int64_t j = 0, left = total; left > 0; j++) {
            double s = row[j] + b[j] > 0 ? a[j] : 0;
            double r = old[j] + b[j] > 0 ? a[j] : 0;
            if (s == r) continue;
            double delta = s - r;
            const double *unit = w + j * d;
            for (int64_t c = 0; c < d; c++) gradient[c] += delta * unit[c];
            left--;
        }
    }
}
