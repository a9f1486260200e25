#ifndef ISOSWEEP_CKERNELS_H
#define ISOSWEEP_CKERNELS_H

#include <stdint.h>

// The float32 training step's passes over rows of the hidden matrix, compiled once per
// instruction set and chosen at run time (Swift compiles for baseline x86-64, where its SIMD
// types are 4 wide). Every variant evaluates `FastMath`'s expressions in the same order on
// 16-lane vectors, with the same reductions: the baseline one without contraction, bit for bit
// FastMath; AVX2 and AVX-512 with explicit fused multiply-adds, bit for bit each other. The ulp
// bounds FastMathTests states hold for every variant (StepKernelTests checks each one).

/// Instruction sets with a variant: baseline (SSE2 on x86-64, the compiler's default
/// elsewhere), AVX2 with FMA, AVX-512 F/BW/DQ/VL.
enum {
    ISOSWEEP_ISA_BASELINE = 0,
    ISOSWEEP_ISA_AVX2 = 1,
    ISOSWEEP_ISA_AVX512 = 2,
};

/// Activations, numbered as the kernels expect.
enum {
    ISOSWEEP_RELU = 0,
    ISOSWEEP_TANH = 1,
    ISOSWEEP_SOFTPLUS = 2,
};

/// The best variant this processor runs (decided once).
int isosweep_best_isa(void);

/// Whether this processor runs variant `isa`.
int isosweep_isa_supported(int isa);

/// The plain step's pass over `rows` rows of `hidden` (row stride k): each row z becomes
/// h = psi(z + b), the residual f - y = h . a + c - y is formed, r = scale * residual, and the row
/// becomes its back-propagated slopes psi'(z + b) * a * r. gradA += r h, gradB += the slopes,
/// *gradC += r, *sumOfSquares += residual^2. `scratch` holds 2k floats (softplus' slopes of
/// two rows: rows go in pairs, without changing any sum's order).
void isosweep_training_rows(int isa, int activation, int64_t rows, int64_t k, float *hidden, float *scratch,
                            const float *b, const float *a, float c, const float *y, float scale,
                            float *gradA, float *gradB, float *gradC, double *sumOfSquares);

/// The penalised step's first pass: as `isosweep_training_rows`, except that psi' (from the value;
/// softplus' with its value, as the plain step computes it) goes to `slopes` (same layout as
/// hidden), r to `residuals`, and the row keeps h, unless the activation is relu, whose slopes
/// are then final (row = slopes, gradB += them).
void isosweep_penalty_rows(int isa, int activation, int64_t rows, int64_t k, float *hidden, float *slopes,
                           const float *b, const float *a, float c, const float *y, float scale,
                           float *residuals, float *gradA, float *gradB, float *gradC, double *sumOfSquares);

/// The penalised step's second pass (smooth activations): with h in `hidden`, s = psi' in
/// `slopes`, V = U W^T in `mixed` and r in `residuals`, the row becomes
/// a * (r s + penalty * psi'' * v) and gradB += it. psi'' is -2 h (1 - h^2) for tanh and
/// s (1 - s) for softplus. `mixed` is left zero, so that the next block's V GEMM adds to it
/// (beta 1, the same bits as beta 0) without OpenBLAS clearing it first.
void isosweep_penalty_curvature_rows(int isa, int activation, int64_t rows, int64_t k, float *hidden,
                                     const float *slopes, float *mixed, const float *a,
                                     const float *residuals, float penalty, float *gradB);

/// The penalty's projection of each row of u (rows x d) onto the tangent space of the sphere at
/// the matching row of x, when `tangential` (u -= (u . x / x . x) x, rows with x = 0 untouched),
/// then *penaltySum += |u|^2 row by row.
void isosweep_project_rows(int isa, int64_t rows, int64_t d, float *u, const float *x, int tangential,
                           double *penaltySum);

/// The Lipschitz ascent's pass for tanh and softplus: each row z of `z` (X W^T, no bias) becomes
/// a * psi'(z + b), and the row of `curvatures` a * psi''(z + b).
void isosweep_ascent_rows(int isa, int activation, int64_t rows, int64_t k, float *z, float *curvatures,
                          const float *b, const float *a);

/// relu's slopes: row i of `slopes` becomes a * [z + b > 0] for row i of `z` (`z` may be `slopes`).
void isosweep_relu_slopes_rows(int isa, int64_t rows, int64_t k, const float *z, float *slopes, const float *b,
                               const float *a);

/// The ascent's pass for relu against a reference: changes[i] is the number of units whose slope
/// a * [z + b > 0] at row i of `z` differs from the slope at row i of `reference` (pre-activations,
/// same layout), and where it is at most `limit`, row i of `gradients` (d per row) gets those units'
/// terms (s_j - r_j) w_j added in unit order (`w`: k x d, row-major).
void isosweep_ascent_relu_rows(int isa, int64_t rows, int64_t k, const float *z, const float *reference,
                               const float *b, const float *a, int64_t *changes, float *gradients, const float *w,
                               int64_t d, int64_t limit);

/// The ascent's relu curvature: row r of `u` is multiplied by a * beta s (1 - s), where
/// s = sigmoid(beta (z + b)) and z is row zRows[r] of `z`.
void isosweep_ascent_relu_curvature_rows(int isa, int64_t rows, int64_t k, float *u, const float *z,
                                         const int64_t *zRows, const float *b, const float *a, float beta);

/// The float32 ascent's products with W (k x d, row-major), for processors that run the AVX-512
/// variant only (elsewhere they do nothing): `isosweep_pack_units` lays W out for
/// `isosweep_ascent_xwt` in blocks of 16 units, each d x 16 (ceil(k / 16) * 16 * d floats, zero
/// beyond k). Z (rows x k) = X (rows x d) W^T; G (rows x d) = S (rows x k) W. Every output element
/// is one fused multiply-add chain in input (or unit) order, whatever `rows` is.
void isosweep_pack_units(int64_t k, int64_t d, const float *w, float *packed);
void isosweep_ascent_xwt(int64_t rows, int64_t k, int64_t d, const float *x, const float *packed, float *z);
void isosweep_ascent_sw(int64_t rows, int64_t k, int64_t d, const float *s, const float *w, float *g);

/// float64 tanh, softplus (max(z, 0) + log1p(e^-|z|)) and softplus' slope from its value h
/// (-expm1(-h)) over arrays: glibc's libmvec (at most 4 ulp) in the widest variant up to `isa`,
/// libm for the rest. For the Lipschitz search's float64 evaluations.
void isosweep_tanh_f64(int isa, int64_t count, const double *x, double *out);
void isosweep_softplus_f64(int isa, int64_t count, const double *x, double *out);
void isosweep_softplus_slope_f64(int isa, int64_t count, const double *h, double *out);

/// sigmoid (e = exp(-|z|), (z > 0 ? 1 : e) / (1 + e)) in float64, as above.
void isosweep_sigmoid_f64(int isa, int64_t count, const double *x, double *out);

/// The float64 twins of `isosweep_ascent_rows` and `isosweep_ascent_relu_curvature_rows` (the
/// ascent's polish), with libmvec's functions; `scratch` holds k doubles.
void isosweep_ascent_rows_f64(int isa, int activation, int64_t rows, int64_t k, double *z, double *curvatures,
                              const double *b, const double *a);
/// The float64 twin of `isosweep_ascent_relu_rows` (the polish's relu pass).
void isosweep_ascent_relu_rows_f64(int64_t rows, int64_t k, const double *z, const double *reference,
                                   const double *b, const double *a, int64_t *changes, double *gradients,
                                   const double *w, int64_t d, int64_t limit);
void isosweep_ascent_relu_curvature_rows_f64(int isa, int64_t rows, int64_t k, double *u, const double *z,
                                             const int64_t *zRows, const double *b, const double *a, double beta,
                                             double *scratch);

/// Elementwise functions, for testing each variant against `FastMath`: tanh, softplus, the
/// sigmoid of `softplusAndSigmoid`, and softplus' slope recovered from its value.
void isosweep_tanh(int isa, int64_t count, const float *x, float *out);
void isosweep_softplus(int isa, int64_t count, const float *x, float *out);
void isosweep_softplus_and_sigmoid(int isa, int64_t count, const float *x, float *value, float *slope);
void isosweep_softplus_slope(int isa, int64_t count, const float *h, float *out);

#endif
