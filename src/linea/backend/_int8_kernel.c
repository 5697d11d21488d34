/* linea's int8 × int8 → int32 matrix product for dynamically quantized Linear layers.
 *
 *   y[m, n] = float(acc[m, n]) / (w_scale[n] * x_scale[m]) + bias[n]
 *   acc[m, n] = Σ_k xq[m, k] · wq[n, k]          (exact, in int32)
 *   x_scale[m] = 127 / (max_k |x[m, k]| + 1e-7),  xq = clip(round_half_even(x · x_scale), ±127)
 *
 * Weights are int8 in [-127, 127], packed once into blocks of 16 output channels:
 * packed[block][k / 4][channel][k % 4], so one 64-byte row holds 4 inputs of 16 channels
 * and every SIMD lane accumulates one output channel (no horizontal sums).
 *
 * Paths, chosen at run time by the CPU (the caller may force one):
 *   avx512vnni  vpdpbusd on 512 bits; inputs stored as xq + 128 (u8), exact because
 *               vpdpbusd does not saturate; the 128 · Σ_k wq offset is subtracted after.
 *   avxvnni     the same on 256 bits (VEX encoding); avx512vnni_256 is its EVEX twin,
 *               built from the same source, so machines with AVX-512 VNNI test it.
 *   avx2        vpmaddubsw on |xq| and sign(xq) · wq: every product pair is at most
 *               2 · 127 · 127 = 32258 < 32767, so the int16 step never saturates;
 *               vpmaddwd with ones widens pairs to int32 exactly.
 * Rows holding inf or NaN give NaN outputs. The product accumulates modulo 2^32 and is
 * exact while K · 127² < 2^31 (K ≤ 133,143), which the Python side checks.
 * No FMA contraction anywhere (-ffp-contract=off): every path rounds identically.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 16
#define MR 4       /* rows per tile, 256-bit paths */
#define MR512 4    /* rows per tile, 512-bit path: 16 accumulators + 4 weights + 1 broadcast (6 rows spill, measured 1.8× slower) */

enum { PATH_AVX512VNNI = 0, PATH_AVXVNNI = 1, PATH_AVX512VNNI_256 = 2, PATH_AVX2 = 3, PATH_COUNT = 4 };
static const char *PATH_NAMES[PATH_COUNT] = {"avx512vnni", "avxvnni", "avx512vnni_256", "avx2"};

static int path_supported(int path) {
    __builtin_cpu_init();
    switch (path) {
    case PATH_AVX512VNNI:
    case PATH_AVX512VNNI_256:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    case PATH_AVXVNNI:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    case PATH_AVX2:
        return __builtin_cpu_supports("avx2");
    }
    return 0;
}

/* ---- the packed weight ---------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n, k, n_padded, k_padded;
    int8_t *packed;      /* n_padded / 16 blocks of k_padded / 4 rows of 64 bytes */
    int32_t *offset;     /* 128 · Σ_k wq[n, k], for the u8 paths */
    float *scale;        /* w_scale, padded with ones */
} Packed;

static void *aligned(size_t bytes) {
    void *memory = NULL;
    if (posix_memalign(&memory, 64, bytes ? bytes : 64) != 0) return NULL;
    return memory;
}

static void Packed_dealloc(Packed *self) {
    free(self->packed);
    free(self->offset);
    free(self->scale);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int get_buffer(PyObject *object, Py_buffer *view, Py_ssize_t bytes, const char *what, int writable) {
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->len != bytes) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", what, bytes, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Packed(weight_int8_bytes, scale_float32_bytes, n, k) */
static PyObject *Packed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *weight_object, *scale_object;
    Py_ssize_t n, k;
    if (!PyArg_ParseTuple(args, "OOnn", &weight_object, &scale_object, &n, &k)) return NULL;
    if (n < 0 || k < 0 || k > 133143) {
        PyErr_Format(PyExc_ValueError, "Packed: need 0 <= n and 0 <= k <= 133143, got n=%zd k=%zd", n, k);
        return NULL;
    }
    Py_buffer weight, scale;
    if (get_buffer(weight_object, &weight, n * k, "weight (int8, n × k)", 0) < 0) return NULL;
    if (get_buffer(scale_object, &scale, n * 4, "scale (float32, n)", 0) < 0) {
        PyBuffer_Release(&weight);
        return NULL;
    }
    Packed *self = (Packed *)type->tp_alloc(type, 0);
    if (self == NULL) goto fail;
    self->n = n;
    self->k = k;
    self->n_padded = (n + BLOCK - 1) / BLOCK * BLOCK;
    self->k_padded = (k + 3) / 4 * 4;
    self->packed = aligned((size_t)self->n_padded * self->k_padded);
    self->offset = aligned(sizeof(int32_t) * self->n_padded);
    self->scale = aligned(sizeof(float) * self->n_padded);
    if (!self->packed || !self->offset || !self->scale) {
        Py_DECREF(self);
        PyErr_NoMemory();
        goto fail;
    }
    memset(self->packed, 0, (size_t)self->n_padded * self->k_padded);
    const int8_t *w = weight.buf;
    const float *s = scale.buf;
    for (Py_ssize_t row = 0; row < self->n_padded; row++) {
        int32_t sum = 0;
        if (row < n) {
            int8_t *block = self->packed + (row / BLOCK) * BLOCK * self->k_padded;
            for (Py_ssize_t col = 0; col < k; col++) {
                int8_t value = w[row * k + col];
                block[(col / 4) * BLOCK * 4 + (row % BLOCK) * 4 + col % 4] = value;
                sum += value;
            }
        }
        self->offset[row] = 128 * sum;
        self->scale[row] = row < n ? s[row] : 1.0f;
    }
    PyBuffer_Release(&weight);
    PyBuffer_Release(&scale);
    return (PyObject *)self;
fail:
    PyBuffer_Release(&weight);
    PyBuffer_Release(&scale);
    return NULL;
}

/* ---- quantizing the input rows --------------------------------------------------------- */

/* Writes xq (+128 when offset) into rows of k_padded bytes; returns 1 for a row holding inf
 * or NaN. Inlined into each path's target function, so the compiler vectorizes it there. */
__attribute__((always_inline)) static inline int quantize_row(
        const float *x, Py_ssize_t k, Py_ssize_t k_padded, float *scale_out,
        int8_t *signed_out, uint8_t *magnitude_out, uint8_t *offset_out) {
    float amax = 0.0f;
    int nonfinite = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        float a = fabsf(x[i]);
        nonfinite |= !(a <= 3.402823466e38f);
        amax = a > amax ? a : amax;
    }
    float scale = 127.0f / (amax + 1e-7f);
    *scale_out = scale;
    if (nonfinite) scale = 0.0f;
    for (Py_ssize_t i = 0; i < k; i++) {
        float t = __builtin_nearbyintf(x[i] * scale);
        t = t > 127.0f ? 127.0f : t;
        t = t < -127.0f ? -127.0f : t;
        t = t == t ? t : 0.0f;  /* NaN (only in rows already marked) */
        int32_t q = (int32_t)t;
        if (signed_out) signed_out[i] = (int8_t)q;
        if (magnitude_out) magnitude_out[i] = (uint8_t)(q < 0 ? -q : q);
        if (offset_out) offset_out[i] = (uint8_t)(q + 128);
    }
    for (Py_ssize_t i = k; i < k_padded; i++) {
        if (signed_out) signed_out[i] = 0;
        if (magnitude_out) magnitude_out[i] = 0;
        if (offset_out) offset_out[i] = 128;
    }
    return nonfinite;
}

/* ---- kernels: accumulate rows [row0, row0 + mr) × one n-tile ------------------------------ */

typedef struct {
    const Packed *w;
    Py_ssize_t m;
    const uint8_t *xu;      /* xq + 128 rows (u8 paths) */
    const int8_t *xs;       /* xq rows (avx2) */
    const uint8_t *xa;      /* |xq| rows (avx2) */
    int32_t *acc;           /* m × n_padded, exact accumulators (offset removed) */
    Py_ssize_t block_begin, block_end;  /* the 16-channel blocks this job computes */
} Job;

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) static inline void
tile_512(const Job *job, Py_ssize_t row0, int mr, Py_ssize_t block0, int nb) {
    const Packed *w = job->w;
    Py_ssize_t kp = w->k_padded, steps = kp / 4;
    __m512i acc[MR512][4];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nb; c++) acc[r][c] = _mm512_setzero_si512();
    const int8_t *base = w->packed + block0 * BLOCK * kp;
    for (Py_ssize_t s = 0; s < steps; s++) {
        __m512i wv[4];
        for (int c = 0; c < nb; c++) wv[c] = _mm512_load_si512((const void *)(base + c * BLOCK * kp + s * 64));
        for (int r = 0; r < mr; r++) {
            int32_t quad;
            memcpy(&quad, job->xu + (row0 + r) * kp + s * 4, 4);
            __m512i xb = _mm512_set1_epi32(quad);
            for (int c = 0; c < nb; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], xb, wv[c]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nb; c++) {
            Py_ssize_t n0 = (block0 + c) * BLOCK;
            __m512i off = _mm512_load_si512((const void *)(w->offset + n0));
            _mm512_storeu_si512((void *)(job->acc + (row0 + r) * w->n_padded + n0), _mm512_sub_epi32(acc[r][c], off));
        }
}

#define TILE_CASES(FN, MRV)                                                                        \
    case MRV * 8 + 1: FN(job, row0, MRV, block0, 1); break;                                        \
    case MRV * 8 + 2: FN(job, row0, MRV, block0, 2); break;                                        \
    case MRV * 8 + 3: FN(job, row0, MRV, block0, 3); break;                                        \
    case MRV * 8 + 4: FN(job, row0, MRV, block0, 4); break;

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void run_512(const Job *job) {
    Py_ssize_t blocks = job->block_end;
    for (Py_ssize_t block0 = job->block_begin; block0 < blocks; block0 += 4) {
        int nb = blocks - block0 < 4 ? (int)(blocks - block0) : 4;
        for (Py_ssize_t row0 = 0; row0 < job->m; row0 += MR512) {
            int mr = job->m - row0 < MR512 ? (int)(job->m - row0) : MR512;
            switch (mr * 8 + nb) {
                TILE_CASES(tile_512, 1) TILE_CASES(tile_512, 2) TILE_CASES(tile_512, 3) TILE_CASES(tile_512, 4)
            }
        }
    }
}

/* 256-bit u8 × s8 paths: one block of 16 channels is two 8-lane halves. */
#define DEFINE_VNNI256(NAME, TARGET, DPBUSD)                                                       \
    __attribute__((target(TARGET), always_inline)) static inline void NAME##_tile(                   \
        const Job *job, Py_ssize_t row0, int mr, Py_ssize_t block0) {                                \
        const Packed *w = job->w;                                                                    \
        Py_ssize_t kp = w->k_padded, steps = kp / 4;                                                 \
        __m256i acc[MR][2];                                                                          \
        for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();                 \
        const int8_t *base = w->packed + block0 * BLOCK * kp;                                        \
        for (Py_ssize_t s = 0; s < steps; s++) {                                                     \
            __m256i w0 = _mm256_load_si256((const __m256i *)(base + s * 64));                        \
            __m256i w1 = _mm256_load_si256((const __m256i *)(base + s * 64 + 32));                   \
            for (int r = 0; r < mr; r++) {                                                           \
                int32_t quad;                                                                        \
                memcpy(&quad, job->xu + (row0 + r) * kp + s * 4, 4);                                 \
                __m256i xb = _mm256_set1_epi32(quad);                                                \
                acc[r][0] = DPBUSD(acc[r][0], xb, w0);                                               \
                acc[r][1] = DPBUSD(acc[r][1], xb, w1);                                               \
            }                                                                                        \
        }                                                                                            \
        Py_ssize_t n0 = block0 * BLOCK;                                                              \
        for (int r = 0; r < mr; r++)                                                                 \
            for (int h = 0; h < 2; h++) {                                                            \
                __m256i off = _mm256_load_si256((const __m256i *)(w->offset + n0 + 8 * h));          \
                _mm256_storeu_si256((__m256i *)(job->acc + (row0 + r) * w->n_padded + n0 + 8 * h),   \
                                    _mm256_sub_epi32(acc[r][h], off));                               \
            }                                                                                        \
    }                                                                                                \
    __attribute__((target(TARGET))) static void NAME(const Job *job) {                               \
        Py_ssize_t blocks = job->block_end;                                                          \
        for (Py_ssize_t block0 = job->block_begin; block0 < blocks; block0++)                        \
            for (Py_ssize_t row0 = 0; row0 < job->m; row0 += MR) {                                   \
                int mr = job->m - row0 < MR ? (int)(job->m - row0) : MR;                             \
                switch (mr) {                                                                        \
                case 1: NAME##_tile(job, row0, 1, block0); break;                                    \
                case 2: NAME##_tile(job, row0, 2, block0); break;                                    \
                case 3: NAME##_tile(job, row0, 3, block0); break;                                    \
                default: NAME##_tile(job, row0, 4, block0); break;                                   \
                }                                                                                    \
            }                                                                                        \
    }

DEFINE_VNNI256(run_avxvnni, "avx2,avxvnni", _mm256_dpbusd_avx_epi32)
DEFINE_VNNI256(run_512vl, "avx512f,avx512bw,avx512vl,avx512vnni", _mm256_dpbusd_epi32)

__attribute__((target("avx2"), always_inline)) static inline void
tile_avx2(const Job *job, Py_ssize_t row0, int mr, Py_ssize_t block0) {
    const Packed *w = job->w;
    Py_ssize_t kp = w->k_padded, steps = kp / 4;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const int8_t *base = w->packed + block0 * BLOCK * kp;
    for (Py_ssize_t s = 0; s < steps; s++) {
        __m256i w0 = _mm256_load_si256((const __m256i *)(base + s * 64));
        __m256i w1 = _mm256_load_si256((const __m256i *)(base + s * 64 + 32));
        for (int r = 0; r < mr; r++) {
            int32_t sq, aq;
            memcpy(&sq, job->xs + (row0 + r) * kp + s * 4, 4);
            memcpy(&aq, job->xa + (row0 + r) * kp + s * 4, 4);
            __m256i xs = _mm256_set1_epi32(sq), xa = _mm256_set1_epi32(aq);
            __m256i p0 = _mm256_maddubs_epi16(xa, _mm256_sign_epi8(w0, xs));
            __m256i p1 = _mm256_maddubs_epi16(xa, _mm256_sign_epi8(w1, xs));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
        }
    }
    Py_ssize_t n0 = block0 * BLOCK;
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)(job->acc + (row0 + r) * w->n_padded + n0), acc[r][0]);
        _mm256_storeu_si256((__m256i *)(job->acc + (row0 + r) * w->n_padded + n0 + 8), acc[r][1]);
    }
}

__attribute__((target("avx2"))) static void run_avx2(const Job *job) {
    Py_ssize_t blocks = job->block_end;
    for (Py_ssize_t block0 = job->block_begin; block0 < blocks; block0++)
        for (Py_ssize_t row0 = 0; row0 < job->m; row0 += MR) {
            int mr = job->m - row0 < MR ? (int)(job->m - row0) : MR;
            switch (mr) {
            case 1: tile_avx2(job, row0, 1, block0); break;
            case 2: tile_avx2(job, row0, 2, block0); break;
            case 3: tile_avx2(job, row0, 3, block0); break;
            default: tile_avx2(job, row0, 4, block0); break;
            }
        }
}

static void run_path(int path, const Job *job) {
    switch (path) {
    case PATH_AVX512VNNI: run_512(job); break;
    case PATH_AVXVNNI: run_avxvnni(job); break;
    case PATH_AVX512VNNI_256: run_512vl(job); break;
    default: run_avx2(job); break;
    }
}

/* ---- the whole forward: quantize rows, accumulate, rescale; inlined per path ------------- */

typedef struct {
    const Job *job;
    const float *x;
    float *y;
    const float *bias;
    float *x_scale;
    char *bad;
    int threads;
} Forward;

/* Output blocks split over up to ``threads`` threads (in whole 4-block tiles) when the product
 * is large enough to repay starting them (≥ 2^24 multiply-adds per thread); the caller's
 * thread takes the last share. Threads only ever write their own accumulator columns. */
typedef struct {
    Job job;
    void (*run)(const Job *);
} Share;

static void *run_share(void *argument) {
    Share *share = argument;
    share->run(&share->job);
    return NULL;
}

#define MAX_THREADS 64
static void run_threaded(const Job *job, void (*run)(const Job *), int threads) {
    Py_ssize_t blocks = job->w->n_padded / BLOCK, tiles = (blocks + 3) / 4;
    double work = (double)job->m * (double)job->w->n_padded * (double)job->w->k_padded;
    int count = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    while (count > 1 && work / count < 16777216.0) count--;
    if (count > tiles) count = (int)tiles;
    Share shares[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < count; t++) {
        shares[t].job = *job;
        shares[t].run = run;
        Py_ssize_t first = tiles * t / count * 4, last = tiles * (t + 1) / count * 4;
        shares[t].job.block_begin = first;
        shares[t].job.block_end = last < blocks ? last : blocks;
    }
    for (int t = 0; t < count - 1; t++)
        started[t] = pthread_create(&ids[t], NULL, run_share, &shares[t]) == 0;
    for (int t = 0; t < count - 1; t++)
        if (!started[t]) run_share(&shares[t]);  /* no thread to be had: do it here */
    run_share(&shares[count - 1]);
    for (int t = 0; t < count - 1; t++)
        if (started[t]) pthread_join(ids[t], NULL);
}

__attribute__((always_inline)) static inline void forward_body(const Forward *f, void (*run)(const Job *)) {
    const Job *job = f->job;
    const Packed *w = job->w;
    Py_ssize_t m = job->m, n = w->n, k = w->k, kp = w->k_padded, np_ = w->n_padded;
    for (Py_ssize_t r = 0; r < m; r++)
        f->bad[r] = (char)quantize_row(f->x + r * k, k, kp, f->x_scale + r,
                                       job->xs ? (int8_t *)job->xs + r * kp : NULL,
                                       job->xa ? (uint8_t *)job->xa + r * kp : NULL,
                                       job->xu ? (uint8_t *)job->xu + r * kp : NULL);
    run_threaded(job, run, f->threads);
    for (Py_ssize_t r = 0; r < m; r++) {
        float *row = f->y + r * n;
        const int32_t *a = job->acc + r * np_;
        const float *scale = w->scale, xs = f->x_scale[r];
        if (f->bad[r]) {
            for (Py_ssize_t j = 0; j < n; j++) row[j] = NAN;
        } else if (f->bias) {
            for (Py_ssize_t j = 0; j < n; j++) row[j] = (float)a[j] / (scale[j] * xs) + f->bias[j];
        } else {
            for (Py_ssize_t j = 0; j < n; j++) row[j] = (float)a[j] / (scale[j] * xs);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void forward_512(const Forward *f) {
    forward_body(f, run_512);
}
__attribute__((target("avx2,avxvnni"))) static void forward_avxvnni(const Forward *f) {
    forward_body(f, run_avxvnni);
}
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void forward_512vl(const Forward *f) {
    forward_body(f, run_512vl);
}
__attribute__((target("avx2"))) static void forward_avx2(const Forward *f) {
    forward_body(f, run_avx2);
}

/* ---- Python entry points --------------------------------------------------------------- */

static int check_path(int path) {
    if (path < 0 || path >= PATH_COUNT || !path_supported(path)) {
        PyErr_Format(PyExc_ValueError, "int8 kernel path %d is not available on this CPU", path);
        return -1;
    }
    return 0;
}

/* Accumulators for given int8 rows: accumulate(xq_int8_bytes, acc_int32_out, m, path). For tests. */
static PyObject *Packed_accumulate(Packed *self, PyObject *args) {
    PyObject *x_object, *out_object;
    Py_ssize_t m;
    int path;
    if (!PyArg_ParseTuple(args, "OOni", &x_object, &out_object, &m, &path)) return NULL;
    if (check_path(path) < 0) return NULL;
    Py_buffer x, out;
    if (m < 0 || get_buffer(x_object, &x, m * self->k, "xq (int8, m × k)", 0) < 0) return NULL;
    if (get_buffer(out_object, &out, m * self->n * 4, "acc (int32, m × n)", 1) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    Py_ssize_t kp = self->k_padded, np_ = self->n_padded;
    uint8_t *xu = aligned((size_t)m * kp);
    int8_t *xs = aligned((size_t)m * kp);
    uint8_t *xa = aligned((size_t)m * kp);
    int32_t *acc = aligned(sizeof(int32_t) * (size_t)m * np_);
    if (!xu || !xs || !xa || !acc) {
        free(xu); free(xs); free(xa); free(acc);
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        return PyErr_NoMemory();
    }
    const int8_t *q = x.buf;
    for (Py_ssize_t r = 0; r < m; r++)
        for (Py_ssize_t i = 0; i < kp; i++) {
            int v = i < self->k ? q[r * self->k + i] : 0;
            xu[r * kp + i] = (uint8_t)(v + 128);
            xs[r * kp + i] = (int8_t)v;
            xa[r * kp + i] = (uint8_t)(v < 0 ? -v : v);
        }
    Job job = {self, m, xu, xs, xa, acc, 0, self->n_padded / BLOCK};
    Py_BEGIN_ALLOW_THREADS
    run_path(path, &job);
    Py_END_ALLOW_THREADS
    int32_t *dest = out.buf;
    for (Py_ssize_t r = 0; r < m; r++) memcpy(dest + r * self->n, acc + r * np_, sizeof(int32_t) * self->n);
    free(xu); free(xs); free(xa); free(acc);
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* forward(x_float32_bytes, out_float32, m, bias_float32_or_None, path): the quantized Linear. */
static PyObject *Packed_forward(Packed *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "forward(x, out, m, bias, path, threads) takes 6 arguments");
        return NULL;
    }
    int threads = (int)PyLong_AsLong(args[5]);
    Py_ssize_t m = PyLong_AsSsize_t(args[2]);
    int path = (int)PyLong_AsLong(args[4]);
    if (PyErr_Occurred() || check_path(path) < 0) return NULL;
    Py_buffer x, out, bias;
    int has_bias = args[3] != Py_None;
    if (m < 0 || get_buffer(args[0], &x, m * self->k * 4, "x (float32, m × k)", 0) < 0) return NULL;
    if (get_buffer(args[1], &out, m * self->n * 4, "out (float32, m × n)", 1) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (has_bias && get_buffer(args[3], &bias, self->n * 4, "bias (float32, n)", 0) < 0) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_ssize_t kp = self->k_padded;
    int u8 = path != PATH_AVX2;
    Job job_template = {self, 0, NULL, NULL, NULL, NULL, 0, self->n_padded / BLOCK};
    uint8_t *xu = u8 ? aligned((size_t)m * kp) : NULL;
    int8_t *xs = u8 ? NULL : aligned((size_t)m * kp);
    uint8_t *xa = u8 ? NULL : aligned((size_t)m * kp);
    int32_t *acc = aligned(sizeof(int32_t) * (size_t)m * self->n_padded);
    float *x_scale = aligned(sizeof(float) * (size_t)(m ? m : 1));
    char *bad = calloc((size_t)(m ? m : 1), 1);
    if ((u8 ? !xu : (!xs || !xa)) || !acc || !x_scale || !bad) {
        free(xu); free(xs); free(xa); free(acc); free(x_scale); free(bad);
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        if (has_bias) PyBuffer_Release(&bias);
        return PyErr_NoMemory();
    }
    const float *xf = x.buf;
    float *y = out.buf;
    const float *b = has_bias ? bias.buf : NULL;
    Forward f = {&job_template, xf, y, b, x_scale, bad, threads};
    job_template.m = m; job_template.xu = xu; job_template.xs = xs; job_template.xa = xa; job_template.acc = acc;
    Py_BEGIN_ALLOW_THREADS
    switch (path) {
    case PATH_AVX512VNNI: forward_512(&f); break;
    case PATH_AVXVNNI: forward_avxvnni(&f); break;
    case PATH_AVX512VNNI_256: forward_512vl(&f); break;
    default: forward_avx2(&f); break;
    }
    Py_END_ALLOW_THREADS
    free(xu); free(xs); free(xa); free(acc); free(x_scale); free(bad);
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    if (has_bias) PyBuffer_Release(&bias);
    Py_RETURN_NONE;
}

/* unpack(out_int8): the (n, k) int8 weight back from the packed blocks. */
static PyObject *Packed_unpack(Packed *self, PyObject *out_object) {
    Py_buffer out;
    if (get_buffer(out_object, &out, self->n * self->k, "out (int8, n × k)", 1) < 0) return NULL;
    int8_t *dest = out.buf;
    for (Py_ssize_t row = 0; row < self->n; row++) {
        const int8_t *block = self->packed + (row / BLOCK) * BLOCK * self->k_padded;
        for (Py_ssize_t col = 0; col < self->k; col++)
            dest[row * self->k + col] = block[(col / 4) * BLOCK * 4 + (row % BLOCK) * 4 + col % 4];
    }
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *Packed_nbytes(Packed *self, void *closure) {
    return PyLong_FromSsize_t(self->n_padded * self->k_padded + self->n_padded * 8);
}

static PyMethodDef Packed_methods[] = {
    {"forward", (PyCFunction)(void (*)(void))Packed_forward, METH_FASTCALL, "forward(x, out, m, bias, path, threads)"},
    {"accumulate", (PyCFunction)Packed_accumulate, METH_VARARGS, "accumulate(xq, acc, m, path)"},
    {"unpack", (PyCFunction)Packed_unpack, METH_O, "unpack(out)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Packed_getset[] = {
    {"nbytes", (getter)Packed_nbytes, NULL, "bytes held: packed weights, offsets, scales", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PackedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "linea.backend._int8_kernel.Packed",
    .tp_basicsize = sizeof(Packed),
    .tp_dealloc = (destructor)Packed_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "int8 weights packed for the int8 kernel: Packed(weight, scale, n, k)",
    .tp_methods = Packed_methods,
    .tp_getset = Packed_getset,
    .tp_new = Packed_new,
};

static PyObject *available_paths(PyObject *module, PyObject *unused) {
    PyObject *names = PyList_New(0);
    if (!names) return NULL;
    for (int path = 0; path < PATH_COUNT; path++)
        if (path_supported(path)) {
            PyObject *pair = Py_BuildValue("(si)", PATH_NAMES[path], path);
            if (!pair || PyList_Append(names, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(names);
                return NULL;
            }
            Py_DECREF(pair);
        }
    return names;
}

static PyMethodDef module_methods[] = {
    {"available_paths", available_paths, METH_NOARGS, "[(name, id)] of the paths this CPU runs, best first"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_int8_kernel", "linea's int8 matrix kernel (see _int8_kernel.c)", -1, module_methods,
};

PyMODINIT_FUNC PyInit__int8_kernel(void) {
    if (PyType_Ready(&PackedType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_definition);
    if (!module) return NULL;
    Py_INCREF(&PackedType);
    if (PyModule_AddObject(module, "Packed", (PyObject *)&PackedType) < 0) {
        Py_DECREF(&PackedType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
