// The Lipschitz ascent's passes over rows (`GradientAscent` in float32), one variant per
// instruction set: included by kernels_body.h, with its helpers and macros. The ascent only
// steers (the bounds are the float64 values where it ends), so these need no bit-for-bit twin in
// Swift; they evaluate `FastMath`'s functions (with FMA in the AVX2 and AVX-512 variants).

/// sigmoid(z) as `FastMath.sigmoid` writes it.
INLINE vf VARIANT(sigmoid)(vf z) {
    vf e = VARIANT(exp_nonpositive)(-VARIANT(abs)(z));
    return VARIANT(select)(z > 0.0f, (vf)(1.0f), e) / (1.0f + e);
}

/// tanh and softplus: each row z of `z` (X W^T, without the bias) becomes a psi'(z + b), and the
/// same row of `curvatures` a psi''(z + b).
INLINE void VARIANT(ascent_rows)(int activation, int64_t rows, int64_t k, float *z, float *curvatures,
                                 const float *b, const float *a) {
    for (int64_t i = 0; i < rows; i++) {
        float *row = z + i * k;
        float *curvature = curvatures + i * k;
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf weight = LOAD(a, j, rest);
            vf x = LOAD(row, j, rest) + LOAD(b, j, rest);
            vf slope, second;
            if (activation == ISOSWEEP_TANH) {
                vf t = VARIANT(tanh)(x);
                slope = 1.0f - t * t;
                second = -2.0f * t * slope;
            } else {
                slope = VARIANT(sigmoid)(x);
                second = slope * (1.0f - slope);
            }
            STORE(row, j, weight * slope, rest);
            STORE(curvature, j, weight * second, rest);
        }
    }
}

static void VARIANT(ascent_rows_entry)(int activation, int64_t rows, int64_t k, float *z, float *curvatures,
                                       const float *b, const float *a) {
    if (activation == ISOSWEEP_TANH) {
        VARIANT(ascent_rows)(ISOSWEEP_TANH, rows, k, z, curvatures, b, a);
    } else {
        VARIANT(ascent_rows)(ISOSWEEP_SOFTPLUS, rows, k, z, curvatures, b, a);
    }
}

/// relu's slopes: row i of `slopes` becomes a [z + b > 0] for row i of `z` (may be the same array).
static void VARIANT(relu_slopes_rows_entry)(int64_t rows, int64_t k, const float *z, float *slopes,
                                            const float *b, const float *a) {
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf s = VARIANT(select)(LOAD(z + i * k, j, rest) + LOAD(b, j, rest) > 0.0f, LOAD(a, j, rest), (vf)(0.0f));
            STORE(slopes + i * k, j, s, rest);
        }
    }
}

#ifndef RELU_UPDATE_BATCH
/// Changed units whose terms are added in one pass over a gradient row.
#define RELU_UPDATE_BATCH 32
#endif

/// gradient += deltas[u] w_{units[u]} for u in order (W is k x d, row-major), a product then a
/// sum for each term, one LANES-wide column block at a time.
INLINE void VARIANT(add_unit_terms)(float *gradient, int64_t d, const float *w, const int64_t *units,
                                    const float *deltas, int64_t count) {
    for (int64_t c = 0; c < d; c += LANES) {
        int64_t tail = d - c;
        vf g = LOAD(gradient, c, tail);
        for (int64_t u = 0; u < count; u++) g = g + deltas[u] * LOAD(w + units[u] * d, c, tail);
        STORE(gradient, c, g, tail);
    }
}

/// relu against a reference: for row i of `z` and of `reference` (pre-activations of the same
/// layout, both without the bias), changes[i] counts the units whose slope a [z + b > 0] differs
/// from the reference's, and where at most `limit` did, row i of `gradients` (d per row) is
/// updated by those units' terms (s_j - r_j) w_j, in unit order (W is k x d, row-major). No slope
/// is stored: a row with more changes gets its gradient from a GEMM of slopes made for it alone,
/// and reading two rows instead of writing a third halves the pass's memory traffic.
static void VARIANT(ascent_relu_rows_entry)(int64_t rows, int64_t k, const float *z, const float *reference,
                                            const float *b, const float *a, int64_t *changes, float *gradients,
                                            const float *w, int64_t d, int64_t limit) {
    for (int64_t i = 0; i < rows; i++) {
        const float *row = z + i * k;
        const float *old = reference + i * k;
        vi changed = (vi)(0);
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            // Beyond the row's end a and b load as zeros: both slopes are 0 there, no change.
            vf weight = LOAD(a, j, rest);
            vf bias = LOAD(b, j, rest);
            vf s = VARIANT(select)(LOAD(row, j, rest) + bias > 0.0f, weight, (vf)(0.0f));
            vf r = VARIANT(select)(LOAD(old, j, rest) + bias > 0.0f, weight, (vf)(0.0f));
            changed -= (vi)(s != r);
        }
        int64_t total = 0;
        for (int lane = 0; lane < LANES; lane++) total += changed[lane];
        changes[i] = total;
        if (total > limit) continue;
        float *gradient = gradients + i * d;
        // The changed units in order, found LANES at a time by a vector compare and taken from
        // its bit mask; their terms are added in batches, a gradient vector held in a register
        // across a batch (each element still gets its terms in unit order: the plain loop's bits).
        int64_t units[RELU_UPDATE_BATCH];
        float deltas[RELU_UPDATE_BATCH];
        int64_t held = 0;
        for (int64_t j0 = 0, left = total; left > 0; j0 += LANES) {
            int64_t rest = k - j0;
            vf weight = LOAD(a, j0, rest);
            vf bias = LOAD(b, j0, rest);
            vf s = VARIANT(select)(LOAD(row, j0, rest) + bias > 0.0f, weight, (vf)(0.0f));
            vf r = VARIANT(select)(LOAD(old, j0, rest) + bias > 0.0f, weight, (vf)(0.0f));
            vi differs = (vi)(s != r);
            vf delta = s - r;
            unsigned mask = 0;
            for (int lane = 0; lane < LANES; lane++) mask |= (unsigned)(differs[lane] & 1) << lane;
            while (mask && left > 0) {
                int lane = __builtin_ctz(mask);
                mask &= mask - 1;
                units[held] = j0 + lane;
                deltas[held] = delta[lane];
                held++;
                left--;
                if (held == RELU_UPDATE_BATCH || left == 0) {
                    VARIANT(add_unit_terms)(gradient, d, w, units, deltas, held);
                    held = 0;
                }
            }
        }
    }
}

/// relu's curvature for the ascent's directions: row r of `u` (k per row) is multiplied by
/// a beta s (1 - s), s = sigmoid(beta (z + b)) with z row zRows[r] of `z` (a sharp softplus's
/// psi'', with `ReLUKernel.surrogateSharpness` as beta).
static void VARIANT(ascent_relu_curvature_rows_entry)(int64_t rows, int64_t k, float *u, const float *z,
                                                      const int64_t *zRows, const float *b, const float *a,
                                                      float beta) {
    for (int64_t r = 0; r < rows; r++) {
        float *row = u + r * k;
        const float *zRow = z + zRows[r] * k;
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            vf s = VARIANT(sigmoid)(beta * (LOAD(zRow, j, rest) + LOAD(b, j, rest)));
            vf curvature = beta * s * (1.0f - s);
            STORE(row, j, LOAD(row, j, rest) * (LOAD(a, j, rest) * curvature), rest);
        }
    }
}
