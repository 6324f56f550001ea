/* Python sequences of floats <-> C doubles, shared by the compiled kernels of sim2real.sim. */
#ifndef SIM2REAL_PYFLOATS_H
#define SIM2REAL_PYFLOATS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The n numbers of a sequence into out; -1 with ValueError/TypeError naming `what` otherwise. */
static int read_doubles(PyObject *seq, double *out, Py_ssize_t n, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd numbers, got %zd", what, n, PySequence_Fast_GET_SIZE(fast));
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(items[i]);
        if (out[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* A new list (as_list) or tuple of the n doubles. */
static PyObject *float_seq(const double *v, Py_ssize_t n, int as_list) {
    PyObject *seq = as_list ? PyList_New(n) : PyTuple_New(n);
    if (seq == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (f == NULL) {
            Py_DECREF(seq);
            return NULL;
        }
        if (as_list) PyList_SET_ITEM(seq, i, f);
        else PyTuple_SET_ITEM(seq, i, f);
    }
    return seq;
}

#endif
