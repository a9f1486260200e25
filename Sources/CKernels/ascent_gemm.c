// The float32 Lipschitz ascent's products with the weights, for AVX-512 processors: Z = X W^T and
// G = S W for batches of at most a few hundred rows. OpenBLAS packs W again at every call and
// runs its kernels below their speed at so few rows; W stays the same for a whole search, so it
// is packed once here (`isosweep_pack_units`) and each product is one pass of register-blocked
// fused multiply-adds. Each output element is a sum in a fixed order (over the d inputs, or the
// k units, in turn), whatever the number of rows: a row's result never depends on its batch.

#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
#define ROWS 6  // a block of rows: 12 (Z) or 24 (G) accumulators, with room for the loads

void isosweep_pack_units(int64_t k, int64_t d, const float *w, float *packed) {
    for (int64_t block = 0; block < (k + 15) / 16; block++) {
        for (int64_t c = 0; c < d; c++) {
            for (int64_t lane = 0; lane < 16; lane++) {
                int64_t j = block * 16 + lane;
                packed[(block * d + c) * 16 + lane] = j < k ? w[j * d + c] : 0.0f;
            }
        }
    }
}

/// Rows r..<r+R of Z, units 16 * block ..< 16 * (block + blocks) (blocks 1 or 2), the last
/// block's lanes beyond k not stored.
TARGET INLINE void xwt_tile(int R, int blocks, int64_t r, int64_t block, int64_t k, int64_t d, const float *x,
                            const float *packed, float *z) {
    __m512 acc[ROWS][2];
    for (int i = 0; i < R; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *p0 = packed + block * d * 16;
    const float *p1 = p0 + d * 16;
    for (int64_t c = 0; c < d; c++) {
        __m512 w0 = _mm512_loadu_ps(p0 + c * 16);
        __m512 w1 = blocks == 2 ? _mm512_loadu_ps(p1 + c * 16) : w0;
        for (int i = 0; i < R; i++) {
            __m512 xv = _mm512_set1_ps(x[(r + i) * d + c]);
            acc[i][0] = _mm512_fmadd_ps(xv, w0, acc[i][0]);
            if (blocks == 2) acc[i][1] = _mm512_fmadd_ps(xv, w1, acc[i][1]);
        }
    }
    for (int b = 0; b < blocks; b++) {
        int64_t j = (block + b) * 16;
        __mmask16 mask = k - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - j)) - 1);
        for (int i = 0; i < R; i++) _mm512_mask_storeu_ps(z + (r + i) * k + j, mask, acc[i][b]);
    }
}

TARGET INLINE void xwt_rows(int R, int64_t r, int64_t k, int64_t d, const float *x, const float *packed, float *z) {
    int64_t blocks = (k + 15) / 16;
    int64_t block = 0;
    for (; block + 2 <= blocks; block += 2) xwt_tile(R, 2, r, block, k, d, x, packed, z);
    if (block < blocks) xwt_tile(R, 1, r, block, k, d, x, packed, z);
}

TARGET static void xwt(int64_t rows, int64_t k, int64_t d, const float *x, const float *packed, float *z) {
    int64_t r = 0;
    for (; r + ROWS <= rows; r += ROWS) xwt_rows(ROWS, r, k, d, x, packed, z);
    switch (rows - r) {
    case 5: xwt_rows(5, r, k, d, x, packed, z); break;
    case 4: xwt_rows(4, r, k, d, x, packed, z); break;
    case 3: xwt_rows(3, r, k, d, x, packed, z); break;
    case 2: xwt_rows(2, r, k, d, x, packed, z); break;
    case 1: xwt_rows(1, r, k, d, x, packed, z); break;
    default: break;
    }
}

/// Rows r..<r+R of G, columns c0 ..< c0 + 64 (masked beyond d): a sum over the k units in order.
TARGET INLINE void sw_tile(int R, int64_t r, int64_t c0, int64_t k, int64_t d, const float *s, const float *w,
                           float *g) {
    __mmask16 masks[4];
    for (int q = 0; q < 4; q++) {
        int64_t left = d - (c0 + 16 * q);
        masks[q] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
    }
    __m512 acc[ROWS][4];
    for (int i = 0; i < R; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
    for (int64_t j = 0; j < k; j++) {
        const float *unit = w + j * d + c0;
        __m512 w0 = _mm512_maskz_loadu_ps(masks[0], unit);
        __m512 w1 = _mm512_maskz_loadu_ps(masks[1], unit + 16);
        __m512 w2 = _mm512_maskz_loadu_ps(masks[2], unit + 32);
        __m512 w3 = _mm512_maskz_loadu_ps(masks[3], unit + 48);
        for (int i = 0; i < R; i++) {
            __m512 sv = _mm512_set1_ps(s[(r + i) * k + j]);
            acc[i][0] = _mm512_fmadd_ps(sv, w0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(sv, w1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(sv, w2, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(sv, w3, acc[i][3]);
        }
    }
    for (int i = 0; i < R; i++) {
        for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(g + (r + i) * d + c0 + 16 * q, masks[q], acc[i][q]);
    }
}

TARGET INLINE void sw_rows(int R, int64_t r, int64_t k, int64_t d, const float *s, const float *w, float *g) {
    for (int64_t c0 = 0; c0 < d; c0 += 64) sw_tile(R, r, c0, k, d, s, w, g);
}

TARGET static void sw(int64_t rows, int64_t k, int64_t d, const float *s, const float *w, float *g) {
    int64_t r = 0;
    for (; r + ROWS <= rows; r += ROWS) sw_rows(ROWS, r, k, d, s, w, g);
    switch (rows - r) {
    case 5: sw_rows(5, r, k, d, s, w, g); break;
    case 4: sw_rows(4, r, k, d, s, w, g); break;
    case 3: sw_rows(3, r, k, d, s, w, g); break;
    case 2: sw_rows(2, r, k, d, s, w, g); break;
    case 1: sw_rows(1, r, k, d, s, w, g); break;
    default: break;
    }
}

void isosweep_ascent_xwt(int64_t rows, int64_t k, int64_t d, const float *x, const float *packed, float *z) {
    xwt(rows, k, d, x, packed, z);
}

void isosweep_ascent_sw(int64_t rows, int64_t k, int64_t d, const float *s, const float *w, float *g) {
    sw(rows, k, d, s, w, g);
}

#else

void isosweep_pack_units(int64_t k, int64_t d, const float *w, float *packed) {}
void isosweep_ascent_xwt(int64_t rows, int64_t k, int64_t d, const float *x, const float *packed, float *z) {}
void isosweep_ascent_sw(int64_t rows, int64_t k, int64_t d, const float *s, const float *w, float *g) {}

#endif
