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

/// relu: row i of `slopes` becomes a [z + b > 0] for row i of `z`; with `previous` (same layout),
/// changes[i] counts the units whose slope differs from it, and where at most `limit` did, row i
/// of `gradients` (d per row) is updated by those units' terms (s_j - previous_j) w_j, in unit
/// order (W is k x d, row-major).
static void VARIANT(ascent_relu_rows_entry)(int64_t rows, int64_t k, const float *z, float *slopes,
                                            const float *previous, const float *b, const float *a,
                                            int64_t *changes, float *gradients, const float *w, int64_t d,
                                            int64_t limit) {
    for (int64_t i = 0; i < rows; i++) {
        const float *row = z + i * k;
        float *slope = slopes + i * k;
        vi changed = (vi)(0);
        for (int64_t j = 0; j < k; j += LANES) {
            int64_t rest = k - j;
            // Beyond the row's end a and b load as zeros: those lanes' slopes are 0, as are
            // previous's, and count no change.
            vf s = VARIANT(select)(LOAD(row, j, rest) + LOAD(b, j, rest) > 0.0f, LOAD(a, j, rest), (vf)(0.0f));
            STORE(slope, j, s, rest);
            if (previous) changed -= (vi)(s != LOAD(previous + i * k, j, rest));
        }
        if (!previous) continue;
        int64_t total = 0;
        for (int lane = 0; lane < LANES; lane++) total += changed[lane];
        changes[i] = total;
        if (!gradients || total > limit) continue;
        const float *old = previous + i * k;
        float *gradient = gradients + i * d;
        // The changed units in order: a vector compare finds them 16 at a time.
        for (int64_t j0 = 0, left = total; left > 0; j0 += LANES) {
            int64_t rest = k - j0;
            vi differs = (vi)(LOAD(slope, j0, rest) != LOAD(old, j0, rest));
            for (int lane = 0; lane < LANES && left > 0; lane++) {
                if (!differs[lane]) continue;
                int64_t j = j0 + lane;
                float delta = slope[j] - old[j];
                const float *unit = w + j * d;
                // Elementwise (a product, then a sum, each rounded): the plain loop's bits.
                for (int64_t c = 0; c < d; c += LANES) {
                    int64_t tail = d - c;
                    STORE(gradient, c, LOAD(gradient, c, tail) + delta * LOAD(unit, c, tail), tail);
                }
                left--;
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
