// One variant of the kernels (no include guard: kernels.c includes it once per variant),
// included by kernels.c once per instruction set with
// `VARIANT(name)` naming its functions and a `#pragma clang attribute` giving them the target.
// The expressions are `FastMath`'s, term for term and in the same order (see FastMath.swift for
// why each one is as it is); contraction into FMA is off for the whole file.

// x * y + z: one fused multiply-add in the variants that have FMA (VARIANT_FMA), which round
// once where the baseline (and `FastMath`) round twice; FastMathTests and StepKernelTests bound
// each variant's error separately.
#ifdef VARIANT_FMA
#define MADD(x, y, z) __builtin_elementwise_fma((vf)(x), (vf)(y), (vf)(z))
#else
#define MADD(x, y, z) ((vf)(x) * (vf)(y) + (vf)(z))
#endif

INLINE vf VARIANT(load)(const float *p) {
    vf v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

INLINE void VARIANT(store)(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }

/// The lanes' sum in a fixed order (halves, then quarters, ...), the same in every variant.
INLINE float VARIANT(horizontal_sum)(vf v) {
    v8 s8 = v.lo + v.hi;
    v4 s4 = s8.lo + s8.hi;
    v2 s2 = s4.lo + s4.hi;
    return s2.x + s2.y;
}

INLINE vf VARIANT(select)(vi mask, vf yes, vf no) { return (vf)((mask & (vi)yes) | (~mask & (vi)no)); }

INLINE vf VARIANT(abs)(vf x) { return (vf)((vi)x & 0x7FFFFFFF); }

/// e^c = e * 2^k for c in [-104, 0]: Cody-Waite reduction c = k ln2 + r and the polynomial of r
/// that both exponentials below share; returns e (in [1, 2)) and k.
INLINE vf VARIANT(exp_reduced)(vf c, vi *k) {
    const float shifter = 12582912.0f;
    vf shifted = MADD(c, 1.44269504f, shifter);
    vf n = shifted - shifter;
    vf r = MADD(n, 2.1219444e-4f, MADD(n, -0.693359375f, c));
    vf p = (vf)(1.98756915e-4f);
    p = MADD(p, r, 1.39819995e-3f);
    p = MADD(p, r, 8.3334519e-3f);
    p = MADD(p, r, 4.16657959e-2f);
    p = MADD(p, r, 1.66666655e-1f);
    p = MADD(p, r, 5.00000012e-1f);
    *k = (vi)shifted - (vi)(0x4B400000);
    return MADD(p * r, r, r) + 1.0f;
}

INLINE vf VARIANT(exp_nonpositive)(vf x) {
    vf c = VARIANT(select)(x < -104.0f, (vf)(-104.0f), VARIANT(select)(x > 0.0f, (vf)(0.0f), x));
    vi k;
    vf e = VARIANT(exp_reduced)(c, &k);
    vi half = k >> 1;
    vf first = (vf)((half + 127) << 23);
    vf second = (vf)((k - half + 127) << 23);
    return e * first * second;
}

/// e^x for x <= 0 where results below 2^-126 may be taken as 2^-126 times the polynomial
/// (tanh's, whose 1 - 2e / (1 + e) is 1 in float for any e below 2^-25): the same reduction and
/// polynomial as exp_nonpositive, but x is clamped at -87 so that 2^n stays a normal float and
/// one multiplication applies it. Bit for bit exp_nonpositive's value for x >= -87.
INLINE vf VARIANT(exp_nonpositive_normal)(vf x) {
    // Only the lower clamp: x <= 0 here, and a NaN passes through as in exp_nonpositive.
    vf c = VARIANT(select)(x < -87.0f, (vf)(-87.0f), x);
    vi k;  // in [-126, 0]
    vf e = VARIANT(exp_reduced)(c, &k);
    return e * (vf)((k + 127) << 23);
}

INLINE vf VARIANT(tanh)(vf x) {
    vf a = VARIANT(abs)(x);
    vf x2 = x * x;
    vf q = (vf)(-1382.0f / 155925.0f);
    q = MADD(q, x2, 62.0f / 2835.0f);
    q = MADD(q, x2, -17.0f / 315.0f);
    q = MADD(q, x2, 2.0f / 15.0f);
    q = MADD(q, x2, -1.0f / 3.0f);
    vf small = x * MADD(x2, q, 1.0f);
    vf e = VARIANT(exp_nonpositive_normal)(-2.0f * a);
    vf large = (1.0f - e) / (1.0f + e);
    vf sign = (vf)((vi)large | ((vi)x & (vi)(int)0x80000000));
    return VARIANT(select)(a < 0.35f, small, sign);
}

/// log(1 + u) for u in [0, 1] as `FastMath.log1pUnit` writes it: u q(u), q of degree 10.
INLINE vf VARIANT(log1p_unit)(vf u) {
    vf q = (vf)(0.00203769049f);
    q = MADD(q, u, -0.0134448307f);
    q = MADD(q, u, 0.0415576212f);
    q = MADD(q, u, -0.0825353339f);
    q = MADD(q, u, 0.12425103f);
    q = MADD(q, u, -0.161086321f);
    q = MADD(q, u, 0.198915377f);
    q = MADD(q, u, -0.249873921f);
    q = MADD(q, u, 0.333325684f);
    q = MADD(q, u, -0.499999821f);
    q = MADD(q, u, 1.0f);
    return u * q;
}

INLINE vf VARIANT(softplus)(vf z) {
    return VARIANT(select)(z > 0.0f, z, (vf)(0.0f)) + VARIANT(log1p_unit)(VARIANT(exp_nonpositive)(-VARIANT(abs)(z)));
}

INLINE vf VARIANT(softplus_and_sigmoid)(vf z, vf *slope) {
    vf e = VARIANT(exp_nonpositive)(-VARIANT(abs)(z));
    vi positive = z > 0.0f;
    *slope = VARIANT(select)(positive, (vf)(1.0f), e) / (1.0f + e);
    return VARIANT(select)(positive, z, (vf)(0.0f)) + VARIANT(log1p_unit)(e);
}

INLINE vf VARIANT(softplus_slope)(vf h) {
    vf q = (vf)(1.0f / 40320.0f);
    q = MADD(q, -h, 1.0f / 5040.0f);
    q = MADD(q, -h, 1.0f / 720.0f);
    q = MADD(q, -h, 1.0f / 120.0f);
    q = MADD(q, -h, 1.0f / 24.0f);
    q = MADD(q, -h, 1.0f / 6.0f);
    q = MADD(q, -h, 1.0f / 2.0f);
    vf small = MADD(-(h * h), q, h);
    vf large = 1.0f - VARIANT(exp_nonpositive)(-h);
    return VARIANT(select)(h < 0.35f, small, large);
}

/// relu as ReLUKernel.value writes it: (z + |z|) / 2, exact.
INLINE vf VARIANT(relu)(vf z) { return (z + VARIANT(abs)(z)) * 0.5f; }

INLINE vf VARIANT(value)(int activation, vf z) {
    switch (activation) {
    case ISOSWEEP_RELU: return VARIANT(relu)(z);
    case ISOSWEEP_TANH: return VARIANT(tanh)(z);
    default: return VARIANT(softplus)(z);
    }
}

/// psi' from h = psi(z) (relu, tanh) as the Swift kernels compute it.
INLINE vf VARIANT(slope_from_value)(int activation, vf h) {
    switch (activation) {
    case ISOSWEEP_RELU: return VARIANT(select)(h > 0.0f, (vf)(1.0f), (vf)(0.0f));
    case ISOSWEEP_TANH: return 1.0f - h * h;
    default: return VARIANT(softplus_slope)(h);
    }
}

// The first `count` (< 16) elements of p as a vector, zeros beyond, and the converse store:
// masked loads and stores where the instruction set has them (VARIANT_MASKED), else lane by lane.
INLINE vf VARIANT(load_tail)(const float *p, int64_t count) {
#ifdef VARIANT_MASKED_LOAD
    return VARIANT_MASKED_LOAD(p, count);
#else
    float lanes[LANES] = {0};
    for (int64_t i = 0; i < count; i++) lanes[i] = p[i];
    return VARIANT(load)(lanes);
#endif
}

INLINE void VARIANT(store_tail)(float *p, vf v, int64_t count) {
#ifdef VARIANT_MASKED_STORE
    VARIANT_MASKED_STORE(p, v, count);
#else
    float lanes[LANES];
    VARIANT(store)(lanes, v);
    for (int64_t i = 0; i < count; i++) p[i] = lanes[i];
#endif
}

#define LOAD(p, j, rest) ((rest) >= LANES ? VARIANT(load)((p) + (j)) : VARIANT(load_tail)((p) + (j), (rest)))
#define STORE(p, j, v, rest)                            \
    do {                                                \
        if ((rest) >= LANES) VARIANT(store)((p) + (j), (v));     \
        else VARIANT(store_tail)((p) + (j), (v), (rest)); \
    } while (0)

/// Activates one row in place and returns h . a; softplus' slopes go to `slopes` when `with_slope`.
INLINE float VARIANT(activate_row)(int activation, int with_slope, int64_t k, float *row, float *slopes,
                                          const float *b, const float *a) {
    vf dot = (vf)(0.0f);
    for (int64_t j = 0; j < k; j += LANES) {
        int64_t rest = k - j;
        vf z = LOAD(row, j, rest) + LOAD(b, j, rest);
        vf h;
        if (with_slope) {
            vf s;
            h = VARIANT(softplus_and_sigmoid)(z, &s);
            STORE(slopes, j, s, rest);
        } else {
            h = VARIANT(value)(activation, z);
        }
        STORE(row, j, h, rest);
        // Padding lanes carry a = 0 and a finite h: they add exact zeros.
        dot = MADD(h, LOAD(a, j, rest), dot);
    }
    return VARIANT(horizontal_sum)(dot);
}

/// Activates two rows in place (one pass over b and a for both, two independent dot products);
/// each row's values and dot are those of `activate_row`.
INLINE void VARIANT(activate_two_rows)(int activation, int with_slope, int64_t k, float *row0, float *row1,
                                       float *slopes0, float *slopes1, const float *b, const float *a,
                                       float *dot0, float *dot1) {
    vf sum0 = (vf)(0.0f);
    vf sum1 = (vf)(0.0f);
    for (int64_t j = 0; j < k; j += LANES) {
        int64_t rest = k - j;
        vf bias = LOAD(b, j, rest);
        vf weight = LOAD(a, j, rest);
        vf z0 = LOAD(row0, j, rest) + bias;
        vf z1 = LOAD(row1, j, rest) + bias;
        vf h0, h1;
        if (with_slope) {
            vf s0, s1;
            h0 = VARIANT(softplus_and_sigmoid)(z0, &s0);
            h1 = VARIANT(softplus_and_sigmoid)(z1, &s1);
            STORE(slopes0, j, s0, rest);
            STORE(slopes1, j, s1, rest);
        } else {
            h0 = VARIANT(value)(activation, z0);
            h1 = VARIANT(value)(activation, z1);
        }
        STORE(row0, j, h0, rest);
        STORE(row1, j, h1, rest);
        sum0 = MADD(h0, weight, sum0);
        sum1 = MADD(h1, weight, sum1);
    }
    *dot0 = VARIANT(horizontal_sum)(sum0);
    *dot1 = VARIANT(horizontal_sum)(sum1);
}

/// Rows go in pairs, which halves the traffic to a, b and the gradients of a and b; every sum is
/// formed in the same order as one row at a time would form it (row i's terms, then row i + 1's),
/// so the pairing changes no bit. `scratch` holds 2k floats.
INLINE void VARIANT(training_rows)(int activation, int64_t rows, int64_t k, float *hidden, float *scratch,
                                   const float *b, const float *a, float c, const float *y, float scale,
                                   float *gradA, float *gradB, float *gradC, double *sumOfSquares) {
    int with_slope = activation == ISOSWEEP_SOFTPLUS;
    float gc = *gradC;
    double squares = *sumOfSquares;
    int64_t i = 0;
    for (; i + 1 < rows; i += 2) {
        float *row0 = hidden + i * k;
        float *row1 = row0 + k;
        float *slopes0 = scratch;
        float *slopes1 = scratch + k;
        float dot0, dot1;
        VARIANT(activate_two_rows)(activation, with_slope, k, row0, row1, slopes0, slopes1, b, a, &dot0, &dot1);
        float residual0 = dot0 + c - y[i];
        float residual1 = dot1 + c - y[i + 1];
        squares += (double)residual0 * (double)residual0;
        squares += (double)residual1 * (double)residual1;
        float r0 = scale * residual0;
        float r1 = scale * residual1;
        gc += r0;
        gc += r1;
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf h0 = LOAD(row0, j, rest);
            vf h1 = LOAD(row1, j, rest);
            STORE(gradA, j, MADD(r1, h1, MADD(r0, h0, LOAD(gradA, j, rest))), rest);
            vf slope0 = with_slope ? LOAD(slopes0, j, rest) : VARIANT(slope_from_value)(activation, h0);
            vf slope1 = with_slope ? LOAD(slopes1, j, rest) : VARIANT(slope_from_value)(activation, h1);
            vf weight = LOAD(a, j, rest);
            vf delta0 = slope0 * weight * r0;
            vf delta1 = slope1 * weight * r1;
            STORE(row0, j, delta0, rest);
            STORE(row1, j, delta1, rest);
            STORE(gradB, j, LOAD(gradB, j, rest) + delta0 + delta1, rest);
        }
    }
    for (; i < rows; i++) {
        float *row = hidden + i * k;
        float residual = VARIANT(activate_row)(activation, with_slope, k, row, scratch, b, a) + c - y[i];
        squares += (double)residual * (double)residual;
        float r = scale * residual;
        gc += r;
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf h = LOAD(row, j, rest);
            STORE(gradA, j, MADD(r, h, LOAD(gradA, j, rest)), rest);
            vf slope = with_slope ? LOAD(scratch, j, rest) : VARIANT(slope_from_value)(activation, h);
            vf delta = slope * LOAD(a, j, rest) * r;
            STORE(row, j, delta, rest);
            STORE(gradB, j, LOAD(gradB, j, rest) + delta, rest);
        }
    }
    *gradC = gc;
    *sumOfSquares = squares;
}

INLINE void VARIANT(penalty_rows)(int activation, int64_t rows, int64_t k, float *hidden, float *slopes,
                                         const float *b, const float *a, float c, const float *y, float scale,
                                         float *residuals, float *gradA, float *gradB, float *gradC,
                                         double *sumOfSquares) {
    float gc = *gradC;
    double squares = *sumOfSquares;
    // softplus' slope comes with its value, from one exponential, as in the plain step.
    int with_slope = activation == ISOSWEEP_SOFTPLUS;
    int64_t i = 0;
    // Rows in pairs, as `training_rows` takes them: every sum in the same order as one row at a
    // time (row i's terms, then row i + 1's), so the pairing changes no bit.
    for (; i + 1 < rows; i += 2) {
        float *row0 = hidden + i * k;
        float *row1 = row0 + k;
        float *slope_row0 = slopes + i * k;
        float *slope_row1 = slope_row0 + k;
        float dot0, dot1;
        VARIANT(activate_two_rows)(activation, with_slope, k, row0, row1, slope_row0, slope_row1, b, a, &dot0, &dot1);
        float residual0 = dot0 + c - y[i];
        float residual1 = dot1 + c - y[i + 1];
        squares += (double)residual0 * (double)residual0;
        squares += (double)residual1 * (double)residual1;
        float r0 = scale * residual0;
        float r1 = scale * residual1;
        residuals[i] = r0;
        residuals[i + 1] = r1;
        gc += r0;
        gc += r1;
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf h0 = LOAD(row0, j, rest);
            vf h1 = LOAD(row1, j, rest);
            STORE(gradA, j, MADD(r1, h1, MADD(r0, h0, LOAD(gradA, j, rest))), rest);
            vf s0, s1;
            if (with_slope) {
                s0 = LOAD(slope_row0, j, rest);
                s1 = LOAD(slope_row1, j, rest);
            } else {
                s0 = VARIANT(slope_from_value)(activation, h0);
                s1 = VARIANT(slope_from_value)(activation, h1);
                STORE(slope_row0, j, s0, rest);
                STORE(slope_row1, j, s1, rest);
            }
            if (activation == ISOSWEEP_RELU) {
                vf weight = LOAD(a, j, rest);
                vf delta0 = s0 * weight * r0;
                vf delta1 = s1 * weight * r1;
                STORE(row0, j, delta0, rest);
                STORE(row1, j, delta1, rest);
                STORE(gradB, j, LOAD(gradB, j, rest) + delta0 + delta1, rest);
            }
        }
    }
    for (; i < rows; i++) {
        float *row = hidden + i * k;
        float *slope_row = slopes + i * k;
        float residual = VARIANT(activate_row)(activation, with_slope, k, row, slope_row, b, a) + c - y[i];
        squares += (double)residual * (double)residual;
        float r = scale * residual;
        residuals[i] = r;
        gc += r;
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf h = LOAD(row, j, rest);
            STORE(gradA, j, MADD(r, h, LOAD(gradA, j, rest)), rest);
            vf s;
            if (with_slope) {
                s = LOAD(slope_row, j, rest);
            } else {
                s = VARIANT(slope_from_value)(activation, h);
                STORE(slope_row, j, s, rest);
            }
            if (activation == ISOSWEEP_RELU) {
                vf delta = s * LOAD(a, j, rest) * r;
                STORE(row, j, delta, rest);
                STORE(gradB, j, LOAD(gradB, j, rest) + delta, rest);
            }
        }
    }
    *gradC = gc;
    *sumOfSquares = squares;
}

INLINE void VARIANT(penalty_curvature_rows)(int activation, int64_t rows, int64_t k, float *hidden,
                                                   const float *slopes, float *mixed, const float *a,
                                                   const float *residuals, float penalty, float *gradB) {
    int64_t i = 0;
    // Rows in pairs (one pass over a and gradB for both), gradB's sums in row order as below.
    for (; i + 1 < rows; i += 2) {
        float *row0 = hidden + i * k;
        float *row1 = row0 + k;
        const float *slope_row0 = slopes + i * k;
        const float *slope_row1 = slope_row0 + k;
        float *v0 = mixed + i * k;
        float *v1 = v0 + k;
        float r0 = residuals[i];
        float r1 = residuals[i + 1];
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf weight = LOAD(a, j, rest);
            vf h0 = LOAD(row0, j, rest);
            vf h1 = LOAD(row1, j, rest);
            // tanh's slope is 1 - h^2 again, the bits the first pass stored (no load).
            vf s0 = activation == ISOSWEEP_TANH ? 1.0f - h0 * h0 : LOAD(slope_row0, j, rest);
            vf s1 = activation == ISOSWEEP_TANH ? 1.0f - h1 * h1 : LOAD(slope_row1, j, rest);
            vf curvature0 = activation == ISOSWEEP_TANH ? -2.0f * h0 * s0 : s0 * (1.0f - s0);
            vf curvature1 = activation == ISOSWEEP_TANH ? -2.0f * h1 * s1 : s1 * (1.0f - s1);
            vf delta0 = weight * MADD(r0, s0, penalty * curvature0 * LOAD(v0, j, rest));
            vf delta1 = weight * MADD(r1, s1, penalty * curvature1 * LOAD(v1, j, rest));
            STORE(v0, j, (vf)(0.0f), rest);
            STORE(v1, j, (vf)(0.0f), rest);
            STORE(row0, j, delta0, rest);
            STORE(row1, j, delta1, rest);
            STORE(gradB, j, LOAD(gradB, j, rest) + delta0 + delta1, rest);
        }
    }
    for (; i < rows; i++) {
        float *row = hidden + i * k;
        const float *slope_row = slopes + i * k;
        float *v = mixed + i * k;
        float r = residuals[i];
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf h = LOAD(row, j, rest);
            vf s = activation == ISOSWEEP_TANH ? 1.0f - h * h : LOAD(slope_row, j, rest);
            vf s2 = activation == ISOSWEEP_TANH ? -2.0f * h * s : s * (1.0f - s);
            vf delta = LOAD(a, j, rest) * MADD(r, s, penalty * s2 * LOAD(v, j, rest));
            STORE(v, j, (vf)(0.0f), rest);
            STORE(row, j, delta, rest);
            STORE(gradB, j, LOAD(gradB, j, rest) + delta, rest);
        }
    }
}

/// The penalty's projection of each row u_i of the input gradients onto the tangent space at x_i
/// (when `tangential`): u -= (u . x / x . x) x, then *penaltySum += u . u.
INLINE void VARIANT(project_rows)(int64_t rows, int64_t d, float *u, const float *x, int tangential,
                                  double *penaltySum) {
    double sum = *penaltySum;
    for (int64_t i = 0; i < rows; i++) {
        float *ui = u + i * d;
        const float *xi = x + i * d;
        if (tangential) {
            vf xx = (vf)(0.0f);
            vf ux = (vf)(0.0f);
            for (int64_t j = 0; j < d; j += LANES) {
                int64_t rest = d - j;
                vf xv = LOAD(xi, j, rest);
                xx = MADD(xv, xv, xx);
                ux = MADD(LOAD(ui, j, rest), xv, ux);
            }
            float norm = VARIANT(horizontal_sum)(xx);
            if (norm > 0) {
                float along = VARIANT(horizontal_sum)(ux) / norm;
                for (int64_t j = 0; j < d; j += LANES) {
                    int64_t rest = d - j;
                    STORE(ui, j, MADD(-along, LOAD(xi, j, rest), LOAD(ui, j, rest)), rest);
                }
            }
        }
        vf uu = (vf)(0.0f);
        for (int64_t j = 0; j < d; j += LANES) {
            int64_t rest = d - j;
            vf uv = LOAD(ui, j, rest);
            uu = MADD(uv, uv, uu);
        }
        sum += (double)VARIANT(horizontal_sum)(uu);
    }
    *penaltySum = sum;
}

#include "ascent_body.h"

#undef LOAD
#undef STORE

// The exported entry points of this variant, one per activation so that each inner loop is
// compiled for a constant activation.
#define ISOSWEEP_PER_ACTIVATION(body)                 \
    switch (activation) {                             \
    case ISOSWEEP_RELU: { const int act = ISOSWEEP_RELU; body; } break; \
    case ISOSWEEP_TANH: { const int act = ISOSWEEP_TANH; body; } break; \
    default: { const int act = ISOSWEEP_SOFTPLUS; body; } break; \
    }

static void VARIANT(training_rows_entry)(int activation, int64_t rows, int64_t k, float *hidden, float *scratch,
                                         const float *b, const float *a, float c, const float *y, float scale,
                                         float *gradA, float *gradB, float *gradC, double *sumOfSquares) {
    ISOSWEEP_PER_ACTIVATION(VARIANT(training_rows)(act, rows, k, hidden, scratch, b, a, c, y, scale, gradA, gradB,
                                                   gradC, sumOfSquares))
}

static void VARIANT(penalty_rows_entry)(int activation, int64_t rows, int64_t k, float *hidden, float *slopes,
                                        const float *b, const float *a, float c, const float *y, float scale,
                                        float *residuals, float *gradA, float *gradB, float *gradC,
                                        double *sumOfSquares) {
    ISOSWEEP_PER_ACTIVATION(VARIANT(penalty_rows)(act, rows, k, hidden, slopes, b, a, c, y, scale, residuals, gradA,
                                                  gradB, gradC, sumOfSquares))
}

static void VARIANT(penalty_curvature_rows_entry)(int activation, int64_t rows, int64_t k, float *hidden,
                                                  const float *slopes, float *mixed, const float *a,
                                                  const float *residuals, float penalty, float *gradB) {
    if (activation == ISOSWEEP_TANH) {
        VARIANT(penalty_curvature_rows)(ISOSWEEP_TANH, rows, k, hidden, slopes, mixed, a, residuals, penalty, gradB);
    } else {
        VARIANT(penalty_curvature_rows)(ISOSWEEP_SOFTPLUS, rows, k, hidden, slopes, mixed, a, residuals, penalty,
                                        gradB);
    }
}

static void VARIANT(project_rows_entry)(int64_t rows, int64_t d, float *u, const float *x, int tangential,
                                        double *penaltySum) {
    VARIANT(project_rows)(rows, d, u, x, tangential, penaltySum);
}

// Elementwise entry points (tests).
#define ISOSWEEP_ELEMENTWISE(name, expression)                                       \
    static void VARIANT(name##_entry)(int64_t count, const float *x, float *out) {  \
        for (int64_t j = 0; j < count; j += LANES) {                                \
            int64_t rest = count - j;                                               \
            vf v = rest >= LANES ? VARIANT(load)(x + j) : VARIANT(load_tail)(x + j, rest);   \
            vf result = expression;                                                 \
            if (rest >= LANES) VARIANT(store)(out + j, result);                              \
            else VARIANT(store_tail)(out + j, result, rest);                        \
        }                                                                           \
    }
ISOSWEEP_ELEMENTWISE(tanh, VARIANT(tanh)(v))
ISOSWEEP_ELEMENTWISE(softplus, VARIANT(softplus)(v))
ISOSWEEP_ELEMENTWISE(softplus_slope, VARIANT(softplus_slope)(v))
#undef ISOSWEEP_ELEMENTWISE

static void VARIANT(softplus_and_sigmoid_entry)(int64_t count, const float *x, float *value, float *slope) {
    for (int64_t j = 0; j < count; j += LANES) {
        int64_t rest = count - j;
        vf v = rest >= LANES ? VARIANT(load)(x + j) : VARIANT(load_tail)(x + j, rest);
        vf s;
        vf h = VARIANT(softplus_and_sigmoid)(v, &s);
        if (rest >= LANES) {
            VARIANT(store)(value + j, h);
            VARIANT(store)(slope + j, s);
        } else {
            VARIANT(store_tail)(value + j, h, rest);
            VARIANT(store_tail)(slope + j, s, rest);
        }
    }
}
#undef ISOSWEEP_PER_ACTIVATION
#undef MADD
