/* The joint-space armature solve of PhysicsWorld._armature_torques (sim2real.sim._armature).
 *
 * Armature J (a geared motor's rotor inertia seen at the joint) is MuJoCo's: J on the joint's
 * diagonal of the joint-space mass matrix. PyBullet has none, so before each physics step the
 * world sends τ − J q̈ with q̈ = (M + diag J)⁻¹(τ − bias − D q̇ + g), g the previous physics step's
 * constraint force (M_prev Δq̇/h − applied_prev). It runs every physics step (12 per control step
 * on the arms); in numpy the wrappers of a dozen small-array operations cost several times the
 * arithmetic, so it is compiled: this is its one implementation (tests/test_sim_armature.py checks
 * it against numpy's solve and the resulting q̈ against the armature model).
 */
#include "_pyfloats.h"

#define ARM_MAX 32

/* Rows of a square matrix (a sequence of n sequences of n numbers) into m. */
static int read_matrix(PyObject *seq, double m[][ARM_MAX], Py_ssize_t n) {
    PyObject *fast = PySequence_Fast(seq, "armature_solve(): expected a matrix");
    if (fast == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_SetString(PyExc_ValueError, "armature_solve(): the mass matrix does not match the joint count");
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (read_doubles(PySequence_Fast_GET_ITEM(fast, i), m[i], n, "armature_solve(): a mass matrix row") < 0) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* armature_solve(mass, bias, qd, damping, dofs, armature, torque, prev, h): the arithmetic of
 * PhysicsWorld._armature_torques. mass (n x n), bias, qd, damping (n) over the movable joints;
 * dofs, armature, torque per controlled joint; prev None or (mass, applied, qd) of the previous
 * physics step; h the physics step (s). Returns (torques to send, applied forces). */
static PyObject *armature_solve(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "armature_solve() takes 9 arguments");
        return NULL;
    }
    static double mass[ARM_MAX][ARM_MAX], eff[ARM_MAX][ARM_MAX], mprev[ARM_MAX][ARM_MAX];
    double bias[ARM_MAX], qd[ARM_MAX], damp[ARM_MAX], applied[ARM_MAX], force[ARM_MAX], x[ARM_MAX];
    double aprev[ARM_MAX], qdprev[ARM_MAX], acc[ARM_MAX], arm[ARM_MAX], torque[ARM_MAX], sent[ARM_MAX];
    Py_ssize_t dofs[ARM_MAX];
    Py_ssize_t n = PySequence_Size(args[2]), nk = PySequence_Size(args[4]);
    if (n < 0 || nk < 0) return NULL;
    if (n == 0 || n > ARM_MAX || nk > n) {
        PyErr_SetString(PyExc_ValueError, "armature_solve(): 1..32 movable joints, at most as many controlled");
        return NULL;
    }
    if (read_matrix(args[0], mass, n) < 0 || read_doubles(args[1], bias, n, "armature_solve(): bias") < 0 ||
        read_doubles(args[2], qd, n, "armature_solve(): qd") < 0 ||
        read_doubles(args[3], damp, n, "armature_solve(): damping") < 0 ||
        read_doubles(args[5], arm, nk, "armature_solve(): armature") < 0 ||
        read_doubles(args[6], torque, nk, "armature_solve(): torque") < 0)
        return NULL;
    for (Py_ssize_t k = 0; k < nk; k++) {
        PyObject *item = PySequence_GetItem(args[4], k);
        if (item == NULL) return NULL;
        dofs[k] = PyLong_AsSsize_t(item);
        Py_DECREF(item);
        if (dofs[k] == -1 && PyErr_Occurred()) return NULL;
        if (dofs[k] < 0 || dofs[k] >= n) {
            PyErr_SetString(PyExc_ValueError, "armature_solve(): a joint index out of range");
            return NULL;
        }
    }
    double h = PyFloat_AsDouble(args[8]);
    if (h == -1.0 && PyErr_Occurred()) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        applied[i] = -bias[i] - damp[i] * qd[i];
        force[i] = applied[i];
    }
    if (args[7] != Py_None) {
        if (!PyTuple_Check(args[7]) || PyTuple_GET_SIZE(args[7]) != 3) {
            PyErr_SetString(PyExc_ValueError, "armature_solve(): prev must be None or (mass, applied, qd)");
            return NULL;
        }
        if (read_matrix(PyTuple_GET_ITEM(args[7], 0), mprev, n) < 0 ||
            read_doubles(PyTuple_GET_ITEM(args[7], 1), aprev, n, "armature_solve(): previous applied forces") < 0 ||
            read_doubles(PyTuple_GET_ITEM(args[7], 2), qdprev, n, "armature_solve(): previous qd") < 0)
            return NULL;
        for (Py_ssize_t j = 0; j < n; j++) acc[j] = (qd[j] - qdprev[j]) / h;
        for (Py_ssize_t i = 0; i < n; i++) {
            double g = -aprev[i];
            for (Py_ssize_t j = 0; j < n; j++) g += mprev[i][j] * acc[j];
            force[i] += g;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = 0; j < n; j++) eff[i][j] = mass[i][j];
    for (Py_ssize_t k = 0; k < nk; k++) {
        force[dofs[k]] += torque[k];
        eff[dofs[k]][dofs[k]] += arm[k];
    }
    /* Gaussian elimination without pivoting (the matrix is symmetric positive definite) */
    for (Py_ssize_t k = 0; k < n; k++) {
        double pivot = eff[k][k];
        for (Py_ssize_t i = k + 1; i < n; i++) {
            double f = eff[i][k] / pivot;
            if (f != 0.0) {
                for (Py_ssize_t j = k + 1; j < n; j++) eff[i][j] -= f * eff[k][j];
                force[i] -= f * force[k];
            }
        }
    }
    for (Py_ssize_t i = n - 1; i >= 0; i--) {
        double acc_i = force[i];
        for (Py_ssize_t j = i + 1; j < n; j++) acc_i -= eff[i][j] * x[j];
        x[i] = acc_i / eff[i][i];
    }
    for (Py_ssize_t k = 0; k < nk; k++) {
        sent[k] = torque[k] - arm[k] * x[dofs[k]];
        applied[dofs[k]] += sent[k];
    }
    PyObject *sent_list = float_seq(sent, nk, 1), *applied_list = NULL, *out = NULL;
    if (sent_list != NULL && (applied_list = float_seq(applied, n, 1)) != NULL)
        out = PyTuple_Pack(2, sent_list, applied_list);
    Py_XDECREF(sent_list);
    Py_XDECREF(applied_list);
    return out;
}

static PyMethodDef module_methods[] = {
    {"armature_solve", (PyCFunction)(void (*)(void))armature_solve, METH_FASTCALL,
     "armature_solve(mass, bias, qd, damping, dofs, armature, torque, prev, h) -> (torques to send, applied forces)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef armature_module = {
    PyModuleDef_HEAD_INIT, "_armature", "The joint-space armature solve of PhysicsWorld.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__armature(void) { return PyModule_Create(&armature_module); }
