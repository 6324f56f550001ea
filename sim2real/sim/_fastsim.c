/* Compiled hot paths of the simulation (sim2real.sim.compiled): the quadrotor's physics-step loop
 * and observation/reward, and PhysicsWorld's torque substep loop.
 *
 * The Python rotor model (QuadrotorDynamics.physics_step_at, BodyRateController.rpm) runs once
 * per physics step; on the quadrotor, whose physics step is cheap, its interpreter overhead
 * was most of an env step. This module runs the same arithmetic in C, in the same order, on
 * IEEE doubles (built with -ffp-contract=off: no fused multiply-add), so a trajectory is
 * bit-for-bit the one of the Python model; the tests check that. PyBullet is still driven
 * through its Python functions (getBasePositionAndOrientation, getMatrixFromQuaternion,
 * getBaseVelocity, applyExternalForce, applyExternalTorque, stepSimulation), with the same
 * calls and arguments as the Python path.
 *
 * The state (motor speeds and command, controller integral and previous rate) stays in the
 * Python objects: run() reads it at the start and writes it back at the end, so the Python
 * path and this one can be mixed freely.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define N_ROTOR_VALUES 36
#define N_CTRL_VALUES 28
#define N_VCTRL_VALUES 12
#define RPM_TO_RAD_S (2.0 * 3.14159265358979311600 / 60.0)

typedef struct {
    PyObject_HEAD
    PyObject *get_pose, *get_matrix, *get_vel, *apply_force, *apply_torque, *step_sim;
    PyObject *kwargs;                  /* {"physicsClientId": client} */
    PyObject *body, *base_link, *world_frame;
    int has_rotor, has_ctrl;
    /* rotor model (QuadrotorDynamics._precompute) */
    double alpha, kf, rotor[12], zc[3], yaw_signs[4];
    int ge, drag;
    double ge_k, ge_cap, ground_z, drag_m[9], max_rpm;
    /* body-rate controller (BodyRateController, nominal numbers) */
    double inertia[3], kp[3], ki[3], kd[3], dt, ilim, mix[12], ckf, t_max;
    /* velocity controller (VelocityController, nominal numbers) */
    int has_vctrl;
    double v_mass, v_kp[3], v_ki[3], v_gain, v_tan_tilt, v_dt, v_g, v_ilim;
} Kernel;

static PyObject *empty_args;
static PyObject *s_rpm, *s_rpm_cmd, *s_thrusts, *s_yaw_torque, *s_integral, *s_prev_rate;

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

static PyObject *float_list(const double *v, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (f == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, f);
    }
    return list;
}

static PyObject *float_tuple(const double *v, Py_ssize_t n) {
    PyObject *tup = PyTuple_New(n);
    if (tup == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (f == NULL) {
            Py_DECREF(tup);
            return NULL;
        }
        PyTuple_SET_ITEM(tup, i, f);
    }
    return tup;
}

/* Python's float(x) of an element of an already-read sequence (a 3-tuple of floats from PyBullet). */
static int tuple_doubles(PyObject *tup, double *out, Py_ssize_t n) {
    return read_doubles(tup, out, n, "PyBullet returned an unexpected value");
}

static void Kernel_dealloc(Kernel *self) {
    Py_XDECREF(self->get_pose);
    Py_XDECREF(self->get_matrix);
    Py_XDECREF(self->get_vel);
    Py_XDECREF(self->apply_force);
    Py_XDECREF(self->apply_torque);
    Py_XDECREF(self->step_sim);
    Py_XDECREF(self->kwargs);
    Py_XDECREF(self->body);
    Py_XDECREF(self->base_link);
    Py_XDECREF(self->world_frame);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Kernel_init(Kernel *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"client", "body", NULL};
    int client, body;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii", kwlist, &client, &body)) return -1;
    PyObject *pb = PyImport_ImportModule("pybullet");
    if (pb == NULL) return -1;
    PyObject *get_pose = PyObject_GetAttrString(pb, "getBasePositionAndOrientation");
    PyObject *get_matrix = PyObject_GetAttrString(pb, "getMatrixFromQuaternion");
    PyObject *get_vel = PyObject_GetAttrString(pb, "getBaseVelocity");
    PyObject *apply_force = PyObject_GetAttrString(pb, "applyExternalForce");
    PyObject *apply_torque = PyObject_GetAttrString(pb, "applyExternalTorque");
    PyObject *step_sim = PyObject_GetAttrString(pb, "stepSimulation");
    PyObject *world_frame = PyObject_GetAttrString(pb, "WORLD_FRAME");
    Py_DECREF(pb);
    PyObject *kw = PyDict_New();
    PyObject *cid = PyLong_FromLong(client);
    PyObject *bid = PyLong_FromLong(body);
    PyObject *base = PyLong_FromLong(-1);
    if (!get_pose || !get_matrix || !get_vel || !apply_force || !apply_torque || !step_sim || !world_frame ||
        !kw || !cid || !bid || !base || PyDict_SetItemString(kw, "physicsClientId", cid) < 0) {
        Py_XDECREF(get_pose); Py_XDECREF(get_matrix); Py_XDECREF(get_vel); Py_XDECREF(apply_force);
        Py_XDECREF(apply_torque); Py_XDECREF(step_sim); Py_XDECREF(world_frame); Py_XDECREF(kw);
        Py_XDECREF(cid); Py_XDECREF(bid); Py_XDECREF(base);
        return -1;
    }
    Py_DECREF(cid);
    Py_XSETREF(self->get_pose, get_pose);
    Py_XSETREF(self->get_matrix, get_matrix);
    Py_XSETREF(self->get_vel, get_vel);
    Py_XSETREF(self->apply_force, apply_force);
    Py_XSETREF(self->apply_torque, apply_torque);
    Py_XSETREF(self->step_sim, step_sim);
    Py_XSETREF(self->world_frame, world_frame);
    Py_XSETREF(self->kwargs, kw);
    Py_XSETREF(self->body, bid);
    Py_XSETREF(self->base_link, base);
    self->has_rotor = self->has_ctrl = self->has_vctrl = 0;
    return 0;
}

static PyObject *Kernel_set_body(Kernel *self, PyObject *arg) {
    long body = PyLong_AsLong(arg);
    if (body == -1 && PyErr_Occurred()) return NULL;
    PyObject *bid = PyLong_FromLong(body);
    if (bid == NULL) return NULL;
    Py_XSETREF(self->body, bid);
    Py_RETURN_NONE;
}

/* set_rotor(values): alpha, kf, rotor (12, row-major Cᵀ(r_i − c)), z_com (3), yaw_signs (4, times km),
 * ge (0/1), ge_k, ge_cap, ground_z, drag (0/1), drag_m (9), max_rpm: 36 numbers. */
static PyObject *Kernel_set_rotor(Kernel *self, PyObject *arg) {
    double v[N_ROTOR_VALUES];
    if (read_doubles(arg, v, N_ROTOR_VALUES, "set_rotor") < 0) return NULL;
    int i = 0;
    self->alpha = v[i++];
    self->kf = v[i++];
    for (int k = 0; k < 12; k++) self->rotor[k] = v[i++];
    for (int k = 0; k < 3; k++) self->zc[k] = v[i++];
    for (int k = 0; k < 4; k++) self->yaw_signs[k] = v[i++];
    self->ge = v[i++] != 0.0;
    self->ge_k = v[i++];
    self->ge_cap = v[i++];
    self->ground_z = v[i++];
    self->drag = v[i++] != 0.0;
    for (int k = 0; k < 9; k++) self->drag_m[k] = v[i++];
    self->max_rpm = v[i++];
    self->has_rotor = 1;
    Py_RETURN_NONE;
}

/* set_controller(values): inertia (3), kp (3), ki (3), kd (3), dt, integral_limit, mixer torque
 * columns (4 rows x 3), kf, t_max: 28 numbers; set_controller(None) removes it. */
static PyObject *Kernel_set_controller(Kernel *self, PyObject *arg) {
    if (arg == Py_None) {
        self->has_ctrl = 0;
        Py_RETURN_NONE;
    }
    double v[N_CTRL_VALUES];
    if (read_doubles(arg, v, N_CTRL_VALUES, "set_controller") < 0) return NULL;
    int i = 0;
    for (int k = 0; k < 3; k++) self->inertia[k] = v[i++];
    for (int k = 0; k < 3; k++) self->kp[k] = v[i++];
    for (int k = 0; k < 3; k++) self->ki[k] = v[i++];
    for (int k = 0; k < 3; k++) self->kd[k] = v[i++];
    self->dt = v[i++];
    self->ilim = v[i++];
    for (int k = 0; k < 12; k++) self->mix[k] = v[i++];
    self->ckf = v[i++];
    self->t_max = v[i++];
    self->has_ctrl = 1;
    Py_RETURN_NONE;
}

/* set_velocity_controller(values): mass, kp (3), ki (3), attitude gain, tan(max_tilt), dt, gravity,
 * integral limit: 12 numbers; None removes it. */
static PyObject *Kernel_set_velocity_controller(Kernel *self, PyObject *arg) {
    if (arg == Py_None) {
        self->has_vctrl = 0;
        Py_RETURN_NONE;
    }
    double v[N_VCTRL_VALUES];
    if (read_doubles(arg, v, N_VCTRL_VALUES, "set_velocity_controller") < 0) return NULL;
    int i = 0;
    self->v_mass = v[i++];
    for (int k = 0; k < 3; k++) self->v_kp[k] = v[i++];
    for (int k = 0; k < 3; k++) self->v_ki[k] = v[i++];
    self->v_gain = v[i++];
    self->v_tan_tilt = v[i++];
    self->v_dt = v[i++];
    self->v_g = v[i++];
    self->v_ilim = v[i++];
    self->has_vctrl = 1;
    Py_RETURN_NONE;
}

/* VelocityController.command: (thrust, roll rate, pitch rate) into out[0..2]; `integral` updated. */
static void velocity_controller(Kernel *k, const double *vcmd, const double *r, const double *v, double *integral,
                                double *out) {
    double dt = k->v_dt, lim = k->v_ilim, g = k->v_g;
    double e0 = vcmd[0] - v[0], e1 = vcmd[1] - v[1], e2 = vcmd[2] - v[2];
    double i0 = integral[0] + e0 * dt, i1 = integral[1] + e1 * dt, i2 = integral[2] + e2 * dt;
    double nlim = -lim;
    i0 = (i0 != i0 || i0 > nlim) ? i0 : nlim;
    i0 = (i0 != i0 || i0 < lim) ? i0 : lim;
    i1 = (i1 != i1 || i1 > nlim) ? i1 : nlim;
    i1 = (i1 != i1 || i1 < lim) ? i1 : lim;
    i2 = (i2 != i2 || i2 > nlim) ? i2 : nlim;
    i2 = (i2 != i2 || i2 < lim) ? i2 : lim;
    integral[0] = i0, integral[1] = i1, integral[2] = i2;
    double a0 = k->v_kp[0] * e0 + k->v_ki[0] * i0, a1 = k->v_kp[1] * e1 + k->v_ki[1] * i1;
    double a2 = k->v_kp[2] * e2 + k->v_ki[2] * i2;
    a2 = a2 + g;
    a2 = 0.2 * g > a2 ? 0.2 * g : a2;
    double horizontal = sqrt(a0 * a0 + a1 * a1);
    double limit = a2 * k->v_tan_tilt;
    if (horizontal > limit) {
        double s = limit / horizontal;
        a0 = a0 * s, a1 = a1 * s;
    }
    double zx = r[2], zy = r[5], zz = r[8];
    double thrust = k->v_mass * (a0 * zx + a1 * zy + a2 * zz);
    thrust = 0.0 > thrust ? 0.0 : thrust;
    double norm = sqrt(a0 * a0 + a1 * a1 + a2 * a2);
    double u0 = a0 / norm, u1 = a1 / norm, u2 = a2 / norm;
    double c0 = zy * u2 - zz * u1, c1 = zz * u0 - zx * u2, c2 = zx * u1 - zy * u0;
    out[0] = thrust;
    out[1] = k->v_gain * (r[0] * c0 + r[3] * c1 + r[6] * c2);
    out[2] = k->v_gain * (r[1] * c0 + r[4] * c1 + r[7] * c2);
}

static PyObject *call_kw(Kernel *self, PyObject *func, PyObject *args) {
    if (args == NULL) return NULL;
    PyObject *out = PyObject_Call(func, args, self->kwargs);
    Py_DECREF(args);
    return out;
}

/* BodyRateController._torque then ._rotor_thrusts then .rpm, then QuadrotorDynamics.command_rpm's
 * clip; same operations in the same order. `integral`, `prev`, `has_prev` are updated. */
static void rate_controller(Kernel *k, double thrust, const double *w_cmd, const double *w, double *integral,
                            double *prev, int *has_prev, double *rpm_cmd) {
    double dt = k->dt, lim = k->ilim;
    double w0 = w[0], w1 = w[1], w2 = w[2];
    double e0 = w_cmd[0] - w0, e1 = w_cmd[1] - w1, e2 = w_cmd[2] - w2;
    double i0 = integral[0] + e0 * dt, i1 = integral[1] + e1 * dt, i2 = integral[2] + e2 * dt;
    double nlim = -lim;
    i0 = nlim > i0 ? nlim : i0;
    i0 = lim < i0 ? lim : i0;
    i1 = nlim > i1 ? nlim : i1;
    i1 = lim < i1 ? lim : i1;
    i2 = nlim > i2 ? nlim : i2;
    i2 = lim < i2 ? lim : i2;
    integral[0] = i0, integral[1] = i1, integral[2] = i2;
    double a0 = k->kp[0] * e0 + k->ki[0] * i0, a1 = k->kp[1] * e1 + k->ki[1] * i1, a2 = k->kp[2] * e2 + k->ki[2] * i2;
    if (!*has_prev) {
        a0 = a0 - k->kd[0] * 0.0, a1 = a1 - k->kd[1] * 0.0, a2 = a2 - k->kd[2] * 0.0;
    } else {
        a0 = a0 - k->kd[0] * ((w0 - prev[0]) / dt);
        a1 = a1 - k->kd[1] * ((w1 - prev[1]) / dt);
        a2 = a2 - k->kd[2] * ((w2 - prev[2]) / dt);
    }
    prev[0] = w0, prev[1] = w1, prev[2] = w2;
    *has_prev = 1;
    double j0 = k->inertia[0], j1 = k->inertia[1], j2 = k->inertia[2];
    double h0 = j0 * w0, h1 = j1 * w1, h2 = j2 * w2;
    double t0 = j0 * a0 + (w1 * h2 - w2 * h1), t1 = j1 * a1 + (w2 * h0 - w0 * h2), t2 = j2 * a2 + (w0 * h1 - w1 * h0);
    /* mixer */
    const double *m = k->mix;
    double t_max = k->t_max;
    double d[4];
    for (int r = 0; r < 4; r++) d[r] = m[3 * r] * t0 + m[3 * r + 1] * t1 + m[3 * r + 2] * t2;
    double lo_d = d[0];
    lo_d = d[1] < lo_d ? d[1] : lo_d;
    lo_d = d[2] < lo_d ? d[2] : lo_d;
    lo_d = d[3] < lo_d ? d[3] : lo_d;
    double hi_d = d[0];
    hi_d = d[1] > hi_d ? d[1] : hi_d;
    hi_d = d[2] > hi_d ? d[2] : hi_d;
    hi_d = d[3] > hi_d ? d[3] : hi_d;
    double spread = hi_d - lo_d;
    if (spread > t_max) {
        double s = t_max / spread;
        d[0] = d[0] * s, d[1] = d[1] * s, d[2] = d[2] * s, d[3] = d[3] * s;
        lo_d = lo_d * s, hi_d = hi_d * s;
    }
    double base = thrust / 4.0;
    base = -lo_d > base ? -lo_d : base;
    base = t_max - hi_d < base ? t_max - hi_d : base;
    double top = k->max_rpm;
    for (int r = 0; r < 4; r++) {
        double t = base + d[r];
        t = 0.0 > t ? 0.0 : t;
        t = t_max < t ? t_max : t;
        double c = sqrt(t / k->ckf);
        rpm_cmd[r] = !(c > 0.0) ? 0.0 : (c > top ? top : c);
    }
}

/* The base state after the last step, as QuadrotorEnv._state builds it: (position (3,), rotation
 * (9, row-major), linear velocity (3,), body rates Rᵀω (3,)), tuples of floats. */
static PyObject *base_state(Kernel *self) {
    PyObject *pose = NULL, *mat = NULL, *vel = NULL, *rates = NULL, *out = NULL;
    double m[9], ang[3], w[3];
    pose = call_kw(self, self->get_pose, PyTuple_Pack(1, self->body));
    if (pose == NULL || !PyTuple_Check(pose) || PyTuple_GET_SIZE(pose) != 2) goto done;
    mat = PyObject_CallOneArg(self->get_matrix, PyTuple_GET_ITEM(pose, 1));
    if (mat == NULL || tuple_doubles(mat, m, 9) < 0) goto done;
    vel = call_kw(self, self->get_vel, PyTuple_Pack(1, self->body));
    if (vel == NULL || !PyTuple_Check(vel) || PyTuple_GET_SIZE(vel) != 2) goto done;
    if (tuple_doubles(PyTuple_GET_ITEM(vel, 1), ang, 3) < 0) goto done;
    w[0] = m[0] * ang[0] + m[3] * ang[1] + m[6] * ang[2];
    w[1] = m[1] * ang[0] + m[4] * ang[1] + m[7] * ang[2];
    w[2] = m[2] * ang[0] + m[5] * ang[1] + m[8] * ang[2];
    if ((rates = float_tuple(w, 3)) == NULL) goto done;
    out = PyTuple_Pack(4, PyTuple_GET_ITEM(pose, 0), mat, PyTuple_GET_ITEM(vel, 0), rates);
done:
    Py_XDECREF(pose);
    Py_XDECREF(mat);
    Py_XDECREF(vel);
    Py_XDECREF(rates);
    return out;
}

/* run(n, dynamics, controller, command, extra_force, extra_torque, read_state, velocity_controller):
 * n physics steps.
 *
 * dynamics: the QuadrotorDynamics (its _rpm and _rpm_cmd lists are read; _rpm, _thrusts and
 * _yaw_torque written, and _rpm_cmd when a controller runs). controller: the BodyRateController
 * or None (its _integral and _prev_rate read and written). command: [F, p, q, r] floats when a
 * controller runs (else None). extra_force / extra_torque: world-frame 3-sequences or None.
 * read_state: if true, return base_state() after the last step (else None). velocity_controller:
 * the VelocityController or None (then command is [vx, vy, vz, yaw rate]; its _integral read and
 * written; the rate controller must be given too). */
static PyObject *Kernel_run(Kernel *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "run() takes 8 arguments");
        return NULL;
    }
    if (!self->has_rotor) {
        PyErr_SetString(PyExc_RuntimeError, "run() before set_rotor()");
        return NULL;
    }
    long n = PyLong_AsLong(args[0]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    PyObject *dyn = args[1], *ctrl = args[2], *command = args[3], *ef_obj = args[4], *et_obj = args[5], *tmp0;
    PyObject *vctrl = args[7];
    int use_ctrl = ctrl != Py_None, use_vctrl = vctrl != Py_None;
    if ((use_ctrl && !self->has_ctrl) || (use_vctrl && (!self->has_vctrl || !use_ctrl))) {
        PyErr_SetString(PyExc_RuntimeError, "run() with a controller the kernel was not given (set_controller / "
                                            "set_velocity_controller; the velocity loop needs the rate loop)");
        return NULL;
    }
    double v_integral[3] = {0, 0, 0};
    if (use_vctrl) {
        if ((tmp0 = PyObject_GetAttr(vctrl, s_integral)) == NULL) return NULL;
        int bad0 = read_doubles(tmp0, v_integral, 3, "velocity _integral");
        Py_DECREF(tmp0);
        if (bad0) return NULL;
    }
    double rpm[4], cmd[4], ef[3] = {0, 0, 0}, et[3] = {0, 0, 0}, ctrl_cmd[4] = {0, 0, 0, 0};
    double integral[3] = {0, 0, 0}, prev[3] = {0, 0, 0};
    int has_prev = 0, has_ef = ef_obj != Py_None, has_et = et_obj != Py_None;
    int read_state = PyObject_IsTrue(args[6]);
    if (read_state < 0) return NULL;
    PyObject *tmp;
    if ((tmp = PyObject_GetAttr(dyn, s_rpm)) == NULL) return NULL;
    int bad = read_doubles(tmp, rpm, 4, "_rpm");
    Py_DECREF(tmp);
    if (bad) return NULL;
    if ((tmp = PyObject_GetAttr(dyn, s_rpm_cmd)) == NULL) return NULL;
    bad = read_doubles(tmp, cmd, 4, "_rpm_cmd");
    Py_DECREF(tmp);
    if (bad) return NULL;
    if (has_ef && read_doubles(ef_obj, ef, 3, "extra_force") < 0) return NULL;
    if (has_et && read_doubles(et_obj, et, 3, "extra_torque") < 0) return NULL;
    if (use_ctrl) {
        if (read_doubles(command, ctrl_cmd, 4, "command") < 0) return NULL;
        if ((tmp = PyObject_GetAttr(ctrl, s_integral)) == NULL) return NULL;
        bad = read_doubles(tmp, integral, 3, "_integral");
        Py_DECREF(tmp);
        if (bad) return NULL;
        if ((tmp = PyObject_GetAttr(ctrl, s_prev_rate)) == NULL) return NULL;
        if (tmp != Py_None) {
            has_prev = 1;
            bad = read_doubles(tmp, prev, 3, "_prev_rate");
        }
        Py_DECREF(tmp);
        if (bad) return NULL;
    }
    double thrusts[4] = {0, 0, 0, 0}, yaw = 0.0;
    const double alpha = self->alpha, kf = self->kf;
    const double *rp = self->rotor;
    const double za = self->zc[0], zb = self->zc[1], zcc = self->zc[2];
    int ok = 1;
    for (long step = 0; step < n && ok; step++) {
        ok = 0;
        PyObject *pose = NULL, *mat = NULL, *vel = NULL, *res = NULL;
        double m[9], v[3] = {0, 0, 0}, com_z;
        pose = call_kw(self, self->get_pose, PyTuple_Pack(1, self->body));
        if (pose == NULL || !PyTuple_Check(pose) || PyTuple_GET_SIZE(pose) != 2) goto step_end;
        PyObject *com = PyTuple_GET_ITEM(pose, 0), *quat = PyTuple_GET_ITEM(pose, 1);
        mat = PyObject_CallOneArg(self->get_matrix, quat);
        if (mat == NULL || tuple_doubles(mat, m, 9) < 0) goto step_end;
        {
            double c3[3];
            if (tuple_doubles(com, c3, 3) < 0) goto step_end;
            com_z = c3[2];
        }
        if (use_ctrl || self->drag) {
            vel = call_kw(self, self->get_vel, PyTuple_Pack(1, self->body));
            if (vel == NULL || !PyTuple_Check(vel) || PyTuple_GET_SIZE(vel) != 2) goto step_end;
            if (tuple_doubles(PyTuple_GET_ITEM(vel, 0), v, 3) < 0) goto step_end;
        }
        if (use_ctrl) {
            double ang[3], rates[3];
            if (tuple_doubles(PyTuple_GET_ITEM(vel, 1), ang, 3) < 0) goto step_end;
            rates[0] = m[0] * ang[0] + m[3] * ang[1] + m[6] * ang[2];
            rates[1] = m[1] * ang[0] + m[4] * ang[1] + m[7] * ang[2];
            rates[2] = m[2] * ang[0] + m[5] * ang[1] + m[8] * ang[2];
            if (use_vctrl) {  /* velocity loop: [vx, vy, vz, yaw rate] -> thrust and body rates */
                double tr[3], rc[3];
                velocity_controller(self, ctrl_cmd, m, v, v_integral, tr);
                rc[0] = tr[1], rc[1] = tr[2], rc[2] = ctrl_cmd[3];
                rate_controller(self, tr[0], rc, rates, integral, prev, &has_prev, cmd);
            } else {
                rate_controller(self, ctrl_cmd[0], ctrl_cmd + 1, rates, integral, prev, &has_prev, cmd);
            }
        }
        /* QuadrotorDynamics.physics_step_at */
        double w0, w1, w2, w3;
        if (alpha == 1.0) {
            w0 = cmd[0], w1 = cmd[1], w2 = cmd[2], w3 = cmd[3];
        } else {
            w0 = rpm[0] + alpha * (cmd[0] - rpm[0]);
            w1 = rpm[1] + alpha * (cmd[1] - rpm[1]);
            w2 = rpm[2] + alpha * (cmd[2] - rpm[2]);
            w3 = rpm[3] + alpha * (cmd[3] - rpm[3]);
        }
        rpm[0] = w0, rpm[1] = w1, rpm[2] = w2, rpm[3] = w3;
        double q[4] = {w0 * w0, w1 * w1, w2 * w2, w3 * w3};
        double t[4];
        if (self->ge) {
            double base_h = com_z - self->ground_z;
            for (int r = 0; r < 4; r++) {
                double h = base_h + m[6] * rp[3 * r] + m[7] * rp[3 * r + 1] + m[8] * rp[3 * r + 2];
                h = h > 1e-4 ? h : 1e-4;
                double x = self->ge_k / (h * h);
                t[r] = kf * q[r] * (1.0 / (1.0 - (x < self->ge_cap ? x : self->ge_cap)));
            }
        } else {
            for (int r = 0; r < 4; r++) t[r] = kf * q[r];
        }
        double sx = t[0] * rp[0] + t[1] * rp[3] + t[2] * rp[6] + t[3] * rp[9];
        double sy = t[0] * rp[1] + t[1] * rp[4] + t[2] * rp[7] + t[3] * rp[10];
        double sz = t[0] * rp[2] + t[1] * rp[5] + t[2] * rp[8] + t[3] * rp[11];
        double total = t[0] + t[1] + t[2] + t[3];
        const double *ys = self->yaw_signs;
        yaw = ys[0] * q[0] + ys[1] * q[1] + ys[2] * q[2] + ys[3] * q[3];
        double tx = sy * zcc - sz * zb + yaw * za, ty = sz * za - sx * zcc + yaw * zb, tz = sx * zb - sy * za + yaw * zcc;
        double fx = total * za, fy = total * zb, fz = total * zcc;
        if (self->drag) {
            double ux = m[0] * v[0] + m[3] * v[1] + m[6] * v[2];
            double uy = m[1] * v[0] + m[4] * v[1] + m[7] * v[2];
            double uz = m[2] * v[0] + m[5] * v[1] + m[8] * v[2];
            const double *d = self->drag_m;
            double kk = -(w0 + w1 + w2 + w3) * RPM_TO_RAD_S;
            fx += kk * (d[0] * ux + d[1] * uy + d[2] * uz);
            fy += kk * (d[3] * ux + d[4] * uy + d[5] * uz);
            fz += kk * (d[6] * ux + d[7] * uy + d[8] * uz);
        }
        double wf[3] = {m[0] * fx + m[1] * fy + m[2] * fz, m[3] * fx + m[4] * fy + m[5] * fz,
                        m[6] * fx + m[7] * fy + m[8] * fz};
        double wt[3] = {m[0] * tx + m[1] * ty + m[2] * tz, m[3] * tx + m[4] * ty + m[5] * tz,
                        m[6] * tx + m[7] * ty + m[8] * tz};
        if (has_ef) wf[0] = wf[0] + ef[0], wf[1] = wf[1] + ef[1], wf[2] = wf[2] + ef[2];
        if (has_et) wt[0] = wt[0] + et[0], wt[1] = wt[1] + et[1], wt[2] = wt[2] + et[2];
        thrusts[0] = t[0], thrusts[1] = t[1], thrusts[2] = t[2], thrusts[3] = t[3];
        {
            PyObject *force = float_tuple(wf, 3);
            if (force == NULL) goto step_end;
            res = call_kw(self, self->apply_force, PyTuple_Pack(5, self->body, self->base_link, force, com,
                                                                  self->world_frame));
            Py_DECREF(force);
            if (res == NULL) goto step_end;
            Py_DECREF(res);
            PyObject *torque = float_tuple(wt, 3);
            if (torque == NULL) goto step_end;
            res = call_kw(self, self->apply_torque, PyTuple_Pack(4, self->body, self->base_link, torque,
                                                                   self->world_frame));
            Py_DECREF(torque);
            if (res == NULL) goto step_end;
            Py_DECREF(res);
            res = PyObject_Call(self->step_sim, empty_args, self->kwargs);
            if (res == NULL) goto step_end;
            Py_DECREF(res);
        }
        ok = 1;
    step_end:
        Py_XDECREF(pose);
        Py_XDECREF(mat);
        Py_XDECREF(vel);
    }
    if (!ok) return NULL;
    /* write the state back (Python's types: lists for _rpm/_rpm_cmd/_integral, tuples for the rest) */
    if ((tmp = float_list(rpm, 4)) == NULL || PyObject_SetAttr(dyn, s_rpm, tmp) < 0) goto fail;
    Py_DECREF(tmp);
    if (n > 0) {
        if ((tmp = float_tuple(thrusts, 4)) == NULL || PyObject_SetAttr(dyn, s_thrusts, tmp) < 0) goto fail;
        Py_DECREF(tmp);
        if ((tmp = PyFloat_FromDouble(yaw)) == NULL || PyObject_SetAttr(dyn, s_yaw_torque, tmp) < 0) goto fail;
        Py_DECREF(tmp);
    }
    if (use_ctrl && n > 0) {
        if ((tmp = float_list(cmd, 4)) == NULL || PyObject_SetAttr(dyn, s_rpm_cmd, tmp) < 0) goto fail;
        Py_DECREF(tmp);
        if ((tmp = float_list(integral, 3)) == NULL || PyObject_SetAttr(ctrl, s_integral, tmp) < 0) goto fail;
        Py_DECREF(tmp);
        if ((tmp = float_tuple(prev, 3)) == NULL || PyObject_SetAttr(ctrl, s_prev_rate, tmp) < 0) goto fail;
        Py_DECREF(tmp);
    }
    if (use_vctrl && n > 0) {
        if ((tmp = float_list(v_integral, 3)) == NULL || PyObject_SetAttr(vctrl, s_integral, tmp) < 0) goto fail;
        Py_DECREF(tmp);
    }
    if (read_state) return base_state(self);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(tmp);
    return NULL;
}

/* float32 buffer of `n` items (C-contiguous), for evaluate(). */
static int float32_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t n, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0 || view->len != 4 * n) {
        PyErr_Format(PyExc_ValueError, "%s: expected a contiguous float32 array of %zd items", what, n);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* numpy's clip on float32 (NaN propagates): min(max(v, lo), hi) with numpy's NaN-aware max/min. */
static float clip32(float v, float lo, float hi) {
    v = isnan(v) ? v : (v > lo ? v : lo);
    return isnan(v) ? v : (v < hi ? v : hi);
}

#define N_EVAL_CONSTS 20

/* Python's float ** calls the C library's pow, which is not always x * x for an exponent of 2;
 * GCC would replace pow(x, 2.0) by x * x, so call it through a pointer the compiler cannot see through. */
static double (*volatile libm_pow)(double, double) = pow;

/* evaluate(state, action, prev_distance, consts, obs_low, obs_high, out): the observation and
 * reward of QuadrotorEnv's float fast path (QuadrotorEnv._observation_values clipped as float32,
 * and QuadrotorEnv._evaluate_floats before the crash penalty), same operations in the same order.
 *
 * state: BaseState tuple; action: the applied action (4 floats, the observation's previous
 * action); consts: target (3), hover action (4), bounds low (3), bounds high (3), max_tilt,
 * waypoint task (0/1), body reach, floor top, physics_dt, floor query margin, progress weight;
 * obs_low/obs_high: float32 (25,) bounds; out: writable float32 (25,).
 * Returns (reward, out_of_bounds, flipped, distance, tilt, near_floor): near_floor says the floor
 * contact query cannot be skipped (QuadrotorEnv._touches_floor). */
static PyObject *quad_evaluate(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "evaluate() takes 7 arguments");
        return NULL;
    }
    PyObject *state = args[0];
    double pos[3], rot[9], lin[3], rates[3], a[4], c[N_EVAL_CONSTS];
    double prev_distance = PyFloat_AsDouble(args[2]);
    if (prev_distance == -1.0 && PyErr_Occurred()) return NULL;
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 4) {
        PyErr_SetString(PyExc_TypeError, "evaluate(): state must be a 4-tuple");
        return NULL;
    }
    if (tuple_doubles(PyTuple_GET_ITEM(state, 0), pos, 3) < 0 || tuple_doubles(PyTuple_GET_ITEM(state, 1), rot, 9) < 0 ||
        tuple_doubles(PyTuple_GET_ITEM(state, 2), lin, 3) < 0 || tuple_doubles(PyTuple_GET_ITEM(state, 3), rates, 3) < 0 ||
        read_doubles(args[1], a, 4, "action") < 0 || read_doubles(args[3], c, N_EVAL_CONSTS, "consts") < 0)
        return NULL;
    Py_buffer lo_v, hi_v, out_v;
    if (float32_buffer(args[4], &lo_v, 25, 0, "obs_low") < 0) return NULL;
    if (float32_buffer(args[5], &hi_v, 25, 0, "obs_high") < 0) {
        PyBuffer_Release(&lo_v);
        return NULL;
    }
    if (float32_buffer(args[6], &out_v, 25, 1, "out") < 0) {
        PyBuffer_Release(&lo_v);
        PyBuffer_Release(&hi_v);
        return NULL;
    }
    const double *target = c, *hover = c + 3, *b_lo = c + 7, *b_hi = c + 10;
    double max_tilt = c[13], waypoint = c[14], reach = c[15], floor_top = c[16], dt = c[17], margin = c[18];
    double v[25];
    int i = 0;
    for (int k = 0; k < 3; k++) v[i++] = pos[k];
    for (int k = 0; k < 9; k++) v[i++] = rot[k];
    for (int k = 0; k < 3; k++) v[i++] = lin[k];
    for (int k = 0; k < 3; k++) v[i++] = rates[k];
    for (int k = 0; k < 3; k++) v[i++] = target[k] - pos[k];
    for (int k = 0; k < 4; k++) v[i++] = a[k];
    const float *lo = (const float *)lo_v.buf, *hi = (const float *)hi_v.buf;
    float *out = (float *)out_v.buf;
    for (int k = 0; k < 25; k++) out[k] = clip32((float)v[k], lo[k], hi[k]);
    PyBuffer_Release(&lo_v);
    PyBuffer_Release(&hi_v);
    PyBuffer_Release(&out_v);
    double x = pos[0], y = pos[1], z = pos[2];
    double distance = sqrt(libm_pow(target[0] - x, 2.0) + libm_pow(target[1] - y, 2.0) + libm_pow(target[2] - z, 2.0));
    double r8 = rot[8];
    r8 = -1.0 > r8 ? -1.0 : r8;  /* Python's max(r8, -1.0), then min(., 1.0) */
    r8 = 1.0 < r8 ? 1.0 : r8;
    double tilt = acos(r8);
    int oob = !(b_lo[0] <= x && x <= b_hi[0] && b_lo[1] <= y && y <= b_hi[1] && b_lo[2] <= z && z <= b_hi[2]);
    int flipped = tilt > max_tilt;
    int near_floor = !(z - reach - floor_top > margin + 2.0 * fabs(lin[2]) * dt);
    double d0 = a[0] - hover[0], d1 = a[1] - hover[1], d2 = a[2] - hover[2], d3 = a[3] - hover[3];
    double dd = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
    double reward = 1.0 - distance - 0.05 * sqrt(libm_pow(lin[0], 2.0) + libm_pow(lin[1], 2.0) + libm_pow(lin[2], 2.0)) -
                    0.02 * sqrt(libm_pow(rates[0], 2.0) + libm_pow(rates[1], 2.0) + libm_pow(rates[2], 2.0)) -
                    0.1 * dd / 4.0;
    if (waypoint != 0.0) reward += c[19] * (prev_distance - distance);
    return Py_BuildValue("(dNNddN)", reward, PyBool_FromLong(oob), PyBool_FromLong(flipped), distance, tilt,
                         PyBool_FromLong(near_floor));
}

static PyMethodDef Kernel_methods[] = {
    {"set_body", (PyCFunction)Kernel_set_body, METH_O, "set_body(body): fly this PyBullet body id."},
    {"set_rotor", (PyCFunction)Kernel_set_rotor, METH_O,
     "set_rotor(values): the 36 rotor-model constants of QuadrotorDynamics._precompute."},
    {"set_controller", (PyCFunction)Kernel_set_controller, METH_O,
     "set_controller(values or None): the 28 body-rate controller constants."},
    {"set_velocity_controller", (PyCFunction)Kernel_set_velocity_controller, METH_O,
     "set_velocity_controller(values or None): the 12 velocity controller constants."},
    {"run", (PyCFunction)(void (*)(void))Kernel_run, METH_FASTCALL,
     "run(n, dynamics, controller, command, extra_force, extra_torque, read_state, velocity_controller): "
     "n physics steps."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sim2real.sim._fastsim.Kernel",
    .tp_doc = "Compiled physics-step loop of one quadrotor body: Kernel(client, body).",
    .tp_basicsize = sizeof(Kernel),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_methods = Kernel_methods,
};

/* torque_steps(n, set_motors, step_sim, body, joints, mode, forces, client): n times
 * set_motors(body, joints, mode, forces=forces, physicsClientId=client) then
 * step_sim(physicsClientId=client) -- PhysicsWorld.step's torque loop, with the argument tuple
 * and keyword dicts built once instead of per call. */
static PyObject *torque_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "torque_steps() takes 8 arguments");
        return NULL;
    }
    long n = PyLong_AsLong(args[0]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    PyObject *set_motors = args[1], *step_sim = args[2];
    PyObject *call_args = PyTuple_Pack(3, args[3], args[4], args[5]);
    PyObject *set_kw = PyDict_New(), *step_kw = PyDict_New();
    PyObject *out = NULL;
    if (call_args == NULL || set_kw == NULL || step_kw == NULL || PyDict_SetItemString(set_kw, "forces", args[6]) < 0 ||
        PyDict_SetItemString(set_kw, "physicsClientId", args[7]) < 0 ||
        PyDict_SetItemString(step_kw, "physicsClientId", args[7]) < 0)
        goto done;
    for (long i = 0; i < n; i++) {
        PyObject *r = PyObject_Call(set_motors, call_args, set_kw);
        if (r == NULL) goto done;
        Py_DECREF(r);
        r = PyObject_Call(step_sim, empty_args, step_kw);
        if (r == NULL) goto done;
        Py_DECREF(r);
    }
    out = Py_None;
    Py_INCREF(out);
done:
    Py_XDECREF(call_args);
    Py_XDECREF(set_kw);
    Py_XDECREF(step_kw);
    return out;
}

/* hopper_observe(get_link_state, get_joint_states, get_matrix, body, torso, joints, client, obs_low, obs_high,
 * out): HopperEnv's observation read (one getLinkState of the torso with velocities, one
 * getJointStates of root x, root z, root pitch and the legs), written float32-clipped into `out`
 * ((8 + 2 legs,): z, pitch, leg angles, torso linear velocity, torso-frame angular velocity Rᵀω, leg
 * speeds), as the Python fast path builds it. Returns (torso z, pitch, torso x) as floats
 * (the torso centre's x: Gym's forward position; root x is the pitch hinge's, 1.25 m below). */
static PyObject *hopper_observe(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "hopper_observe() takes 10 arguments");
        return NULL;
    }
    PyObject *ls = NULL, *states = NULL, *mat = NULL, *kw = NULL, *kw_ls = NULL, *call = NULL, *out = NULL;
    Py_buffer lo_v, hi_v, out_v;
    int have_bufs = 0;
    double vals[64], pos[3], lin[3], ang[3], m[9];
    if ((kw = PyDict_New()) == NULL || PyDict_SetItemString(kw, "physicsClientId", args[6]) < 0) goto done;
    if ((kw_ls = PyDict_Copy(kw)) == NULL || PyDict_SetItemString(kw_ls, "computeLinkVelocity", Py_True) < 0 ||
        PyDict_SetItemString(kw_ls, "computeForwardKinematics", Py_True) < 0)
        goto done;
    if ((call = PyTuple_Pack(2, args[3], args[4])) == NULL) goto done;
    ls = PyObject_Call(args[0], call, kw_ls);
    Py_CLEAR(call);
    if (ls == NULL) goto done;
    if (!PyTuple_Check(ls) || PyTuple_GET_SIZE(ls) < 8) {
        PyErr_SetString(PyExc_ValueError, "getLinkState returned no velocities");
        goto done;
    }
    if (tuple_doubles(PyTuple_GET_ITEM(ls, 0), pos, 3) < 0 || tuple_doubles(PyTuple_GET_ITEM(ls, 6), lin, 3) < 0 ||
        tuple_doubles(PyTuple_GET_ITEM(ls, 7), ang, 3) < 0)
        goto done;
    if ((call = PyTuple_Pack(2, args[3], args[5])) == NULL) goto done;
    states = PyObject_Call(args[1], call, kw);
    Py_CLEAR(call);
    if (states == NULL) goto done;
    if (!PyTuple_Check(states) && !PyList_Check(states)) {
        PyErr_SetString(PyExc_ValueError, "getJointStates returned no states");
        goto done;
    }
    Py_ssize_t nj = PySequence_Size(states);
    if (nj < 3 || 2 * (nj - 3) + 8 > 64) {
        PyErr_SetString(PyExc_ValueError, "hopper_observe(): expected root x, root z, root pitch and 1..28 legs");
        goto done;
    }
    mat = PyObject_CallOneArg(args[2], PyTuple_GET_ITEM(ls, 1));
    if (mat == NULL || tuple_doubles(mat, m, 9) < 0) goto done;
    Py_ssize_t legs = nj - 3, n = 2 * legs + 8;
    double q[32], qd[32], pitch = 0.0;
    for (Py_ssize_t j = 0; j < nj; j++) {
        PyObject *st = PySequence_GetItem(states, j);
        if (st == NULL) goto done;
        double qv[2];
        PyObject *two = PySequence_GetSlice(st, 0, 2);
        Py_DECREF(st);
        if (two == NULL) goto done;
        int bad = tuple_doubles(two, qv, 2);
        Py_DECREF(two);
        if (bad) goto done;
        if (j == 2) pitch = qv[0];
        else if (j >= 3) q[j - 3] = qv[0], qd[j - 3] = qv[1];
    }
    Py_ssize_t i = 0;
    vals[i++] = pos[2];
    vals[i++] = pitch;
    for (Py_ssize_t j = 0; j < legs; j++) vals[i++] = q[j];
    vals[i++] = lin[0], vals[i++] = lin[1], vals[i++] = lin[2];
    vals[i++] = m[0] * ang[0] + m[3] * ang[1] + m[6] * ang[2];
    vals[i++] = m[1] * ang[0] + m[4] * ang[1] + m[7] * ang[2];
    vals[i++] = m[2] * ang[0] + m[5] * ang[1] + m[8] * ang[2];
    for (Py_ssize_t j = 0; j < legs; j++) vals[i++] = qd[j];
    if (float32_buffer(args[7], &lo_v, n, 0, "obs_low") < 0) goto done;
    if (float32_buffer(args[8], &hi_v, n, 0, "obs_high") < 0) {
        PyBuffer_Release(&lo_v);
        goto done;
    }
    if (float32_buffer(args[9], &out_v, n, 1, "out") < 0) {
        PyBuffer_Release(&lo_v);
        PyBuffer_Release(&hi_v);
        goto done;
    }
    have_bufs = 1;
    const float *lo = (const float *)lo_v.buf, *hi = (const float *)hi_v.buf;
    float *o = (float *)out_v.buf;
    for (Py_ssize_t k = 0; k < n; k++) o[k] = clip32((float)vals[k], lo[k], hi[k]);
    out = Py_BuildValue("(ddd)", pos[2], pitch, pos[0]);
done:
    if (have_bufs) {
        PyBuffer_Release(&lo_v);
        PyBuffer_Release(&hi_v);
        PyBuffer_Release(&out_v);
    }
    Py_XDECREF(ls);
    Py_XDECREF(states);
    Py_XDECREF(mat);
    Py_XDECREF(kw);
    Py_XDECREF(kw_ls);
    Py_XDECREF(call);
    return out;
}

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
 * PhysicsWorld._armature_torques, the same operations in the same order as its Python twin
 * sim2real.sim.world._armature_solve. mass (n x n), bias, qd, damping (n) over the movable joints;
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
    PyObject *sent_list = float_list(sent, nk), *applied_list = NULL, *out = NULL;
    if (sent_list != NULL && (applied_list = float_list(applied, n)) != NULL)
        out = PyTuple_Pack(2, sent_list, applied_list);
    Py_XDECREF(sent_list);
    Py_XDECREF(applied_list);
    return out;
}

static PyMethodDef module_methods[] = {
    {"hopper_observe", (PyCFunction)(void (*)(void))hopper_observe, METH_FASTCALL,
     "hopper_observe(get_link_state, get_joint_states, get_matrix, body, torso, joints, client, obs_low, obs_high, "
     "out): the hopper's observation."},
    {"armature_solve", (PyCFunction)(void (*)(void))armature_solve, METH_FASTCALL,
     "armature_solve(mass, bias, qd, damping, dofs, armature, torque, prev, h): the joint-space armature torques."},
    {"torque_steps", (PyCFunction)(void (*)(void))torque_steps, METH_FASTCALL,
     "torque_steps(n, set_motors, step_sim, body, joints, mode, forces, client): the torque substep loop."},
    {"evaluate", (PyCFunction)(void (*)(void))quad_evaluate, METH_FASTCALL,
     "evaluate(state, action, prev_distance, consts, obs_low, obs_high, out): observation and reward."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef quadkernel_module = {
    PyModuleDef_HEAD_INIT, "_fastsim",
    "Compiled hot paths of sim2real.sim: quadrotor physics-step loop and observation, torque substep loop.", -1, module_methods, NULL,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastsim(void) {
    if (PyType_Ready(&KernelType) < 0) return NULL;
    empty_args = PyTuple_New(0);
    s_rpm = PyUnicode_InternFromString("_rpm");
    s_rpm_cmd = PyUnicode_InternFromString("_rpm_cmd");
    s_thrusts = PyUnicode_InternFromString("_thrusts");
    s_yaw_torque = PyUnicode_InternFromString("_yaw_torque");
    s_integral = PyUnicode_InternFromString("_integral");
    s_prev_rate = PyUnicode_InternFromString("_prev_rate");
    if (!empty_args || !s_rpm || !s_rpm_cmd || !s_thrusts || !s_yaw_torque || !s_integral || !s_prev_rate) return NULL;
    PyObject *m = PyModule_Create(&quadkernel_module);
    if (m == NULL) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
