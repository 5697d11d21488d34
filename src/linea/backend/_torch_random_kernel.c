/* PyTorch's CPU normal_ (16 values and more) and randperm, bit for bit (linea's optional C kernel).
 *
 * torch 2.13 fills n ≥ 16 contiguous values by drawing n uniforms first, then running
 * Box–Muller on each block of 16: with u1 = 1 − data[j] and u2 = data[j + 8] (j < 8),
 *
 *   data[j]     = fma(√(−2·log u1) · cos(2π·u2), std, mean)
 *   data[j + 8] = fma(√(−2·log u1) · sin(2π·u2), std, mean)
 *
 * float32 uses its AVX2 routine: Cephes' float polynomials for log and sincos (the
 * constants of "avx_mathfun.h"), compiled by GCC, which fuses a multiply into the add
 * or subtract that is its only use, the earlier multiply winning where both operands of
 * an add are products. Each fusion is written out here as fmaf (this file is compiled
 * with -ffp-contract=off, so nothing else is fused): the same roundings in the same
 * order, per lane. float64 uses the scalar loop with libm's log, cos and sin and one
 * fused multiply-add at the end, as GCC compiles torch's template.
 *
 * float32 uniform_ (one fused multiply-add per value) and randperm's Fisher–Yates swaps,
 * which are sequential, run here in one C loop each.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float from_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline uint32_t to_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* log(x) for x > 0 (NaN otherwise): Cephes logf, log256_ps's operations lane by lane. */
static inline __attribute__((always_inline)) float cephes_log(float x) {
    int invalid = !(x > 0.0f);
    float smallest_normal = from_bits(0x00800000u);
    x = x > smallest_normal ? x : smallest_normal;
    int32_t exponent = (int32_t)(to_bits(x) >> 23) - 0x7f;
    x = from_bits((to_bits(x) & ~0x7f800000u) | to_bits(0.5f));  /* mantissa in [0.5, 1) */
    float e = (float)exponent + 1.0f;
    int below = x < 0.707106781186547524f;                       /* √½ */
    float kept = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + kept;
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = fmaf(y, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);  /* y·z + e·q1: the first product is fused */
    y = fmaf(-z, 0.5f, y);
    x = fmaf(e, 0.693359375f, x + y);
    return invalid ? from_bits(0xffffffffu) : x;
}

/* sin and cos of x: Cephes sincosf, sincos256_ps's operations lane by lane. */
static inline __attribute__((always_inline)) void cephes_sincos(float x, float *sine, float *cosine) {
    uint32_t sign_sin = to_bits(x) & 0x80000000u;
    x = from_bits(to_bits(x) & 0x7fffffffu);
    int32_t octant = (int32_t)(x * 1.27323954473516f);  /* 4/π, truncated */
    octant = (octant + 1) & ~1;
    float y = (float)octant;
    uint32_t swap_sin = ((uint32_t)(octant & 4)) << 29;
    int sine_polynomial = (octant & 2) == 0;
    x = fmaf(y, -0.78515625f, x);  /* x − y·π/4 in three parts */
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    uint32_t sign_cos = ((uint32_t)(~(octant - 2) & 4)) << 29;
    sign_sin ^= swap_sin;
    float z = x * x;
    float c = 2.443315711809948E-005f;
    c = fmaf(c, z, -1.388731625493765E-003f);
    c = fmaf(c, z, 4.166664568298827E-002f);
    c = c * z;
    c = fmaf(c, z, -(z * 0.5f));
    c = c + 1.0f;
    float s = -1.9515295891E-4f;
    s = fmaf(s, z, 8.3321608736E-3f);
    s = fmaf(s, z, -1.6666654611E-1f);
    s = s * z;
    s = fmaf(s, x, x);
    float sin_from_s = sine_polynomial ? s : 0.0f;
    float sin_from_c = sine_polynomial ? 0.0f : c;
    s = s - sin_from_s;
    c = c - sin_from_c;
    *sine = from_bits(to_bits(sin_from_c + sin_from_s) ^ sign_sin);
    *cosine = from_bits(to_bits(c + s) ^ sign_cos);
}

/* Compiled twice, for CPUs with and without FMA instructions; the loader picks one at run time
 * (the results are the same: fmaf is exact either way, in hardware or in libm). */
__attribute__((target_clones("fma", "default")))
static void box_muller_float(float *data, Py_ssize_t n, float mean, float std) {
    const float two_pi = (float)(2.0f * 3.14159265358979323846);
    for (Py_ssize_t start = 0; start + 16 <= n; start += 16) {
        float *block = data + start;
        for (int j = 0; j < 8; j++) {
            float radius = sqrtf(-2.0f * cephes_log(1.0f - block[j]));
            float sine, cosine;
            cephes_sincos(two_pi * block[j + 8], &sine, &cosine);
            block[j] = fmaf(radius * cosine, std, mean);
            block[j + 8] = fmaf(radius * sine, std, mean);
        }
    }
}

static void box_muller_double(double *data, Py_ssize_t n, double mean, double std) {
    const double two_pi = 2.0 * 3.14159265358979323846;
    for (Py_ssize_t start = 0; start + 16 <= n; start += 16) {
        double *block = data + start;
        for (int j = 0; j < 8; j++) {
            double radius = sqrt(-2.0 * log(1.0 - block[j]));
            double theta = two_pi * block[j + 8];
            block[j] = fma(radius * cos(theta), std, mean);
            block[j + 8] = fma(radius * sin(theta), std, mean);
        }
    }
}

/* box_muller(uniforms, mean, std): blocks of 16 uniforms (float32 or float64) become normals in place. */
static PyObject *box_muller(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "box_muller takes 3 arguments");
        return NULL;
    }
    double mean = PyFloat_AsDouble(args[1]);
    if (mean == -1.0 && PyErr_Occurred()) return NULL;
    double std = PyFloat_AsDouble(args[2]);
    if (std == -1.0 && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return NULL;
    char format = view.format ? view.format[0] : '\0';
    if ((format != 'f' && format != 'd') || view.format[1] != '\0') {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "box_muller: expected a float32 or float64 buffer");
        return NULL;
    }
    Py_ssize_t n = view.len / view.itemsize;
    Py_BEGIN_ALLOW_THREADS
    if (format == 'f')
        box_muller_float(view.buf, n, (float)mean, (float)std);
    else
        box_muller_double(view.buf, n, mean, std);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* x = (r & 0xFFFFFF)·2⁻²⁴, then fma(x, high − low, low) in float32; a value equal to high becomes low. */
__attribute__((target_clones("fma", "default")))
static void uniform_float_loop(const uint32_t *bits, float *out, Py_ssize_t n, float low, float high) {
    const float span = high - low;
    for (Py_ssize_t i = 0; i < n; i++) {
        float value = fmaf((float)(bits[i] & 0xFFFFFFu) * 0x1p-24f, span, low);
        out[i] = value == high ? low : value;
    }
}

/* uniform_float(bits, out, low, high): torch's float32 uniform_ from 32-bit draws (uint32 → float32). */
static PyObject *uniform_float(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "uniform_float takes 4 arguments");
        return NULL;
    }
    double low = PyFloat_AsDouble(args[2]);
    if (low == -1.0 && PyErr_Occurred()) return NULL;
    double high = PyFloat_AsDouble(args[3]);
    if (high == -1.0 && PyErr_Occurred()) return NULL;
    Py_buffer bits, out;
    if (PyObject_GetBuffer(args[0], &bits, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&bits);
        return NULL;
    }
    int ok = bits.itemsize == 4 && out.itemsize == 4 && bits.format && out.format &&
             bits.format[0] == 'I' && out.format[0] == 'f' && bits.len == out.len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        uniform_float_loop(bits.buf, out.buf, out.len / 4, (float)low, (float)high);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&bits);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "uniform_float: expected uint32 draws and a float32 output of one size");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* fisher_yates(order, draws): for i < len(draws), swap order[i] and order[i + draws[i] % (n − i)]
 * (order int64 of length n > len(draws), draws uint32: torch's randperm for n < 2³²/20). */
static PyObject *fisher_yates(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "fisher_yates takes 2 arguments");
        return NULL;
    }
    Py_buffer order, draws;
    if (PyObject_GetBuffer(args[0], &order, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &draws, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&order);
        return NULL;
    }
    Py_ssize_t n = order.len / 8, steps = draws.len / 4;
    int ok = order.itemsize == 8 && draws.itemsize == 4 && draws.format && draws.format[0] == 'I' &&
             (steps < n || (n == 0 && steps == 0));
    if (ok) {
        int64_t *values = order.buf;
        const uint32_t *random = draws.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < steps; i++) {
            Py_ssize_t j = i + (Py_ssize_t)(random[i] % (uint64_t)(n - i));
            int64_t kept = values[i];
            values[i] = values[j];
            values[j] = kept;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&draws);
    PyBuffer_Release(&order);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "fisher_yates: expected int64 order and fewer uint32 draws");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* has_fma(): whether this CPU runs the FMA build of the float32 loop. */
static PyObject *has_fma(PyObject *module, PyObject *unused) {
    __builtin_cpu_init();
    return PyBool_FromLong(__builtin_cpu_supports("fma"));
}

static PyMethodDef module_methods[] = {
    {"has_fma", has_fma, METH_NOARGS, "has_fma(): whether the FMA build of the float32 loop runs here"},
    {"box_muller", (PyCFunction)(void (*)(void))box_muller, METH_FASTCALL,
     "box_muller(uniforms, mean, std): torch's normal_ on blocks of 16, in place"},
    {"uniform_float", (PyCFunction)(void (*)(void))uniform_float, METH_FASTCALL,
     "uniform_float(bits, out, low, high): torch's float32 uniform_ from uint32 draws"},
    {"fisher_yates", (PyCFunction)(void (*)(void))fisher_yates, METH_FASTCALL,
     "fisher_yates(order, draws): randperm's swaps from its 32-bit draws, in place"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_torch_random_kernel", "torch's normal_ and randperm, bit for bit.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__torch_random_kernel(void) { return PyModule_Create(&module_definition); }
