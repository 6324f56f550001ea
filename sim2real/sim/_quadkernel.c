/* The quadrotor's per-physics-step rotor and controller kernel (sim2real.sim.quadrotor).
 *
 * The one implementation of the rotor model (motor lag, thrust, yaw reaction torque, rotor drag,
 * ground effect, applied as one resultant force and torque at the centre of mass), the body-rate
 * PID with its mixer and the velocity loop. They run once per physics step at 240 Hz; in the
 * interpreter their arithmetic cost more than the physics step itself, so Kernel.run() keeps the
 * whole loop here and drives PyBullet through its own Python functions
 * (getBasePositionAndOrientation, getMatrixFromQuaternion, getBaseVelocity, applyExternalForce,
 * applyExternalTorque, stepSimulation).
 *
 * The state (motor speeds and command, controller integrals and previous rate) stays in the Python
 * objects: run() reads it at the start and writes it back at the end. Constants come from
 * QuadrotorDynamics._precompute / BodyRateController.kernel_values / VelocityController.kernel_values.
 */
#include "_pyfloats.h"
#include <math.h>
#include <string.h>

#define N_ROTOR_VALUES 36
#define N_RATE_VALUES 28
#define N_VEL_VALUES 12
#define RPM_TO_RAD_S (2.0 * 3.14159265358979311600 / 60.0)

typedef struct { /* QuadrotorDynamics._precompute */
    double alpha, kf, rotor[12], zc[3], yaw_signs[4];
    int ge, drag;
    double ge_k, ge_cap, ground_z, drag_m[9], max_rpm;
} RotorConsts;

typedef struct { /* BodyRateController (nominal numbers) */
    double inertia[3], kp[3], ki[3], kd[3], dt, ilim, mix[12], kf, t_max;
} RateConsts;

typedef struct { /* VelocityController (nominal numbers) */
    double mass, kp[3], ki[3], gain, tan_tilt, dt, g, ilim;
} VelConsts;

typedef struct { double integral[3], prev[3]; int has_prev; } RateState;

typedef struct {
    PyObject_HEAD
    PyObject *get_pose, *get_matrix, *get_vel, *apply_force, *apply_torque, *step_sim;
    PyObject *kwargs, *body, *base_link, *world_frame;
    int has_rotor, has_rate, has_vel;
    RotorConsts rotor;
    RateConsts rate;
    VelConsts vel;
    double last_force[3], last_torque[3];
} Kernel;

static PyObject *empty_args;
static PyObject *s_rpm, *s_rpm_cmd, *s_thrusts, *s_yaw_torque, *s_integral, *s_prev_rate;

/* getattr(obj, name) read as n doubles. */
static int attr_doubles(PyObject *obj, PyObject *name, double *out, Py_ssize_t n, const char *what) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    int bad = read_doubles(v, out, n, what);
    Py_DECREF(v);
    return bad;
}

/* setattr(obj, name, list or tuple of n floats). */
static int set_floats(PyObject *obj, PyObject *name, const double *v, Py_ssize_t n, int as_list) {
    PyObject *seq = float_seq(v, n, as_list);
    if (seq == NULL) return -1;
    int bad = PyObject_SetAttr(obj, name, seq);
    Py_DECREF(seq);
    return bad;
}

static int parse_rotor(PyObject *arg, RotorConsts *c) {
    double v[N_ROTOR_VALUES];
    if (read_doubles(arg, v, N_ROTOR_VALUES, "rotor constants") < 0) return -1;
    int i = 0;
    c->alpha = v[i++];
    c->kf = v[i++];
    for (int k = 0; k < 12; k++) c->rotor[k] = v[i++];
    for (int k = 0; k < 3; k++) c->zc[k] = v[i++];
    for (int k = 0; k < 4; k++) c->yaw_signs[k] = v[i++];
    c->ge = v[i++] != 0.0;
    c->ge_k = v[i++];
    c->ge_cap = v[i++];
    c->ground_z = v[i++];
    c->drag = v[i++] != 0.0;
    for (int k = 0; k < 9; k++) c->drag_m[k] = v[i++];
    c->max_rpm = v[i++];
    return 0;
}

static int parse_rate(PyObject *arg, RateConsts *c) {
    double v[N_RATE_VALUES];
    if (read_doubles(arg, v, N_RATE_VALUES, "rate controller constants") < 0) return -1;
    int i = 0;
    for (int k = 0; k < 3; k++) c->inertia[k] = v[i++];
    for (int k = 0; k < 3; k++) c->kp[k] = v[i++];
    for (int k = 0; k < 3; k++) c->ki[k] = v[i++];
    for (int k = 0; k < 3; k++) c->kd[k] = v[i++];
    c->dt = v[i++];
    c->ilim = v[i++];
    for (int k = 0; k < 12; k++) c->mix[k] = v[i++];
    c->kf = v[i++];
    c->t_max = v[i++];
    return 0;
}

static int parse_vel(PyObject *arg, VelConsts *c) {
    double v[N_VEL_VALUES];
    if (read_doubles(arg, v, N_VEL_VALUES, "velocity controller constants") < 0) return -1;
    int i = 0;
    c->mass = v[i++];
    for (int k = 0; k < 3; k++) c->kp[k] = v[i++];
    for (int k = 0; k < 3; k++) c->ki[k] = v[i++];
    c->gain = v[i++];
    c->tan_tilt = v[i++];
    c->dt = v[i++];
    c->g = v[i++];
    c->ilim = v[i++];
    return 0;
}

static double clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* ---------------------------------------------------------------- controllers (no PyBullet) */

/* Velocity loop: a = kp e + ki ∫e + g ẑ (tilt-limited, never below 0.2 g up); thrust m a·z_body and
 * body rates gain · Rᵀ(z_body × â). rot: body->world, row-major. out: thrust, roll rate, pitch rate. */
static void velocity_law(const VelConsts *k, const double *vcmd, const double *rot, const double *v,
                         double *integral, double *out) {
    double a[3];
    for (int i = 0; i < 3; i++) {
        double e = vcmd[i] - v[i];
        integral[i] = clamp(integral[i] + e * k->dt, -k->ilim, k->ilim);
        a[i] = k->kp[i] * e + k->ki[i] * integral[i];
    }
    a[2] = fmax(a[2] + k->g, 0.2 * k->g);
    double horizontal = hypot(a[0], a[1]), limit = a[2] * k->tan_tilt;
    if (horizontal > limit) a[0] *= limit / horizontal, a[1] *= limit / horizontal;
    double zx = rot[2], zy = rot[5], zz = rot[8];
    out[0] = fmax(0.0, k->mass * (a[0] * zx + a[1] * zy + a[2] * zz));
    double norm = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
    double u0 = a[0] / norm, u1 = a[1] / norm, u2 = a[2] / norm;
    double c0 = zy * u2 - zz * u1, c1 = zz * u0 - zx * u2, c2 = zx * u1 - zy * u0;
    out[1] = k->gain * (rot[0] * c0 + rot[3] * c1 + rot[6] * c2);
    out[2] = k->gain * (rot[1] * c0 + rot[4] * c1 + rot[7] * c2);
}

/* Mixer: rotor thrusts (N) in [0, t_max] for collective thrust (N) and body torque (N·m); when the
 * rotors saturate the torque is kept (scaled down only if no thrust can make it) and the collective
 * gives way. */
static void mix(const RateConsts *k, double thrust, const double *tau, double *out) {
    double d[4], lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < 4; r++) {
        d[r] = k->mix[3 * r] * tau[0] + k->mix[3 * r + 1] * tau[1] + k->mix[3 * r + 2] * tau[2];
        lo = fmin(lo, d[r]), hi = fmax(hi, d[r]);
    }
    if (hi - lo > k->t_max) {
        double s = k->t_max / (hi - lo);
        for (int r = 0; r < 4; r++) d[r] *= s;
        lo *= s, hi *= s;
    }
    double base = fmin(fmax(thrust / 4.0, -lo), k->t_max - hi);
    for (int r = 0; r < 4; r++) out[r] = clamp(base + d[r], 0.0, k->t_max);
}

/* Body-rate PID τ = J(kp e + ki ∫e − kd dω/dt) + ω × Jω, the mixer, then rotor speeds (rpm) capped
 * at top (NaN -> 0). */
static void rate_law(const RateConsts *k, RateState *st, double thrust, const double *w_cmd, const double *w,
                     double top, double *rpm) {
    double acc[3], tau[3], h[3], t[4];
    for (int i = 0; i < 3; i++) {
        double e = w_cmd[i] - w[i];
        st->integral[i] = clamp(st->integral[i] + e * k->dt, -k->ilim, k->ilim);
        double dw = st->has_prev ? (w[i] - st->prev[i]) / k->dt : 0.0;
        acc[i] = k->kp[i] * e + k->ki[i] * st->integral[i] - k->kd[i] * dw;
        h[i] = k->inertia[i] * w[i];
        st->prev[i] = w[i];
    }
    st->has_prev = 1;
    tau[0] = k->inertia[0] * acc[0] + (w[1] * h[2] - w[2] * h[1]);
    tau[1] = k->inertia[1] * acc[1] + (w[2] * h[0] - w[0] * h[2]);
    tau[2] = k->inertia[2] * acc[2] + (w[0] * h[1] - w[1] * h[0]);
    mix(k, thrust, tau, t);
    for (int r = 0; r < 4; r++) {
        double c = sqrt(t[r] / k->kf);
        rpm[r] = !(c > 0.0) ? 0.0 : (c > top ? top : c);
    }
}

static int read_rate_state(PyObject *ctrl, RateState *st) {
    if (attr_doubles(ctrl, s_integral, st->integral, 3, "_integral") < 0) return -1;
    PyObject *prev = PyObject_GetAttr(ctrl, s_prev_rate);
    if (prev == NULL) return -1;
    st->has_prev = prev != Py_None;
    int bad = st->has_prev ? read_doubles(prev, st->prev, 3, "_prev_rate") : 0;
    Py_DECREF(prev);
    return bad;
}

static int write_rate_state(PyObject *ctrl, const RateState *st) {
    if (set_floats(ctrl, s_integral, st->integral, 3, 1) < 0) return -1;
    if (!st->has_prev) return PyObject_SetAttr(ctrl, s_prev_rate, Py_None);
    return set_floats(ctrl, s_prev_rate, st->prev, 3, 0);
}

/* ---------------------------------------------------------------- rotor model */

/* Motor lag over one step, then the world-frame resultant force and torque at the centre of mass.
 * m: rotation (9, row-major); com_z: centre-of-mass height (m); v: world velocity (drag). */
static void rotor_wrench(const RotorConsts *c, double *rpm, const double *cmd, const double *m, double com_z,
                         const double *v, double *thrusts, double *yaw, double *force, double *torque) {
    double q[4], s[3] = {0, 0, 0}, total = 0.0, spin = 0.0;
    *yaw = 0.0;
    for (int r = 0; r < 4; r++) {
        rpm[r] = c->alpha == 1.0 ? cmd[r] : rpm[r] + c->alpha * (cmd[r] - rpm[r]);
        q[r] = rpm[r] * rpm[r];
        const double *p = c->rotor + 3 * r; /* Cᵀ(r_i − c): rotor offset in the COM frame */
        double gain = 1.0;
        if (c->ge) { /* Cheeseman–Bennett: 1 / (1 − min(k / h², cap)) at the rotor's height h */
            double h = fmax(com_z - c->ground_z + m[6] * p[0] + m[7] * p[1] + m[8] * p[2], 1e-4);
            gain = 1.0 / (1.0 - fmin(c->ge_k / (h * h), c->ge_cap));
        }
        thrusts[r] = c->kf * q[r] * gain;
        for (int i = 0; i < 3; i++) s[i] += thrusts[r] * p[i];
        total += thrusts[r];
        *yaw += c->yaw_signs[r] * q[r];
        spin += rpm[r];
    }
    const double *z = c->zc; /* body z in the COM frame */
    double t[3] = {s[1] * z[2] - s[2] * z[1] + *yaw * z[0], s[2] * z[0] - s[0] * z[2] + *yaw * z[1],
                   s[0] * z[1] - s[1] * z[0] + *yaw * z[2]};
    double f[3] = {total * z[0], total * z[1], total * z[2]};
    if (c->drag) { /* −M (Σ ω_i) Rᵀ v, M = Cᵀ D C */
        double u[3], k = -spin * RPM_TO_RAD_S;
        for (int i = 0; i < 3; i++) u[i] = m[i] * v[0] + m[3 + i] * v[1] + m[6 + i] * v[2];
        for (int i = 0; i < 3; i++)
            f[i] += k * (c->drag_m[3 * i] * u[0] + c->drag_m[3 * i + 1] * u[1] + c->drag_m[3 * i + 2] * u[2]);
    }
    for (int i = 0; i < 3; i++) {
        force[i] = m[3 * i] * f[0] + m[3 * i + 1] * f[1] + m[3 * i + 2] * f[2];
        torque[i] = m[3 * i] * t[0] + m[3 * i + 1] * t[1] + m[3 * i + 2] * t[2];
    }
}

/* ---------------------------------------------------------------- Kernel */

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
    static const char *names[] = {"getBasePositionAndOrientation", "getMatrixFromQuaternion", "getBaseVelocity",
                                  "applyExternalForce", "applyExternalTorque", "stepSimulation", "WORLD_FRAME"};
    PyObject *got[7];
    int ok = 1;
    for (int i = 0; i < 7; i++) ok = (got[i] = PyObject_GetAttrString(pb, names[i])) != NULL && ok;
    Py_DECREF(pb);
    PyObject *kw = PyDict_New(), *cid = PyLong_FromLong(client);
    ok = ok && kw && cid && PyDict_SetItemString(kw, "physicsClientId", cid) == 0;
    Py_XDECREF(cid);
    if (!ok) {
        for (int i = 0; i < 7; i++) Py_XDECREF(got[i]);
        Py_XDECREF(kw);
        return -1;
    }
    Py_XSETREF(self->get_pose, got[0]);
    Py_XSETREF(self->get_matrix, got[1]);
    Py_XSETREF(self->get_vel, got[2]);
    Py_XSETREF(self->apply_force, got[3]);
    Py_XSETREF(self->apply_torque, got[4]);
    Py_XSETREF(self->step_sim, got[5]);
    Py_XSETREF(self->world_frame, got[6]);
    Py_XSETREF(self->kwargs, kw);
    Py_XSETREF(self->body, PyLong_FromLong(body));
    Py_XSETREF(self->base_link, PyLong_FromLong(-1));
    self->has_rotor = self->has_rate = self->has_vel = 0;
    return self->body && self->base_link ? 0 : -1;
}

static PyObject *Kernel_set_body(Kernel *self, PyObject *arg) {
    long body = PyLong_AsLong(arg);
    if (body == -1 && PyErr_Occurred()) return NULL;
    PyObject *bid = PyLong_FromLong(body);
    if (bid == NULL) return NULL;
    Py_XSETREF(self->body, bid);
    Py_RETURN_NONE;
}

static PyObject *Kernel_set_rotor(Kernel *self, PyObject *arg) {
    if (parse_rotor(arg, &self->rotor) < 0) return NULL;
    self->has_rotor = 1;
    Py_RETURN_NONE;
}

static PyObject *Kernel_set_controller(Kernel *self, PyObject *arg) {
    self->has_rate = 0;
    if (arg != Py_None) {
        if (parse_rate(arg, &self->rate) < 0) return NULL;
        self->has_rate = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *Kernel_set_velocity_controller(Kernel *self, PyObject *arg) {
    self->has_vel = 0;
    if (arg != Py_None) {
        if (parse_vel(arg, &self->vel) < 0) return NULL;
        self->has_vel = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *call_kw(Kernel *self, PyObject *func, PyObject *args) {
    if (args == NULL) return NULL;
    PyObject *out = PyObject_Call(func, args, self->kwargs);
    Py_DECREF(args);
    return out;
}

/* (position, 9-float rotation, linear velocity, body rates Rᵀω), as read after the last step. */
static PyObject *Kernel_state(Kernel *self, PyObject *unused) {
    (void)unused;
    PyObject *pose = NULL, *mat = NULL, *vel = NULL, *rates = NULL, *out = NULL;
    double m[9], ang[3], w[3];
    pose = call_kw(self, self->get_pose, PyTuple_Pack(1, self->body));
    if (pose == NULL || (mat = PyObject_CallOneArg(self->get_matrix, PyTuple_GET_ITEM(pose, 1))) == NULL ||
        read_doubles(mat, m, 9, "rotation") < 0)
        goto done;
    vel = call_kw(self, self->get_vel, PyTuple_Pack(1, self->body));
    if (vel == NULL || read_doubles(PyTuple_GET_ITEM(vel, 1), ang, 3, "angular velocity") < 0) goto done;
    for (int i = 0; i < 3; i++) w[i] = m[i] * ang[0] + m[3 + i] * ang[1] + m[6 + i] * ang[2];
    if ((rates = float_seq(w, 3, 0)) == NULL) goto done;
    out = PyTuple_Pack(4, PyTuple_GET_ITEM(pose, 0), mat, PyTuple_GET_ITEM(vel, 0), rates);
done:
    Py_XDECREF(pose);
    Py_XDECREF(mat);
    Py_XDECREF(vel);
    Py_XDECREF(rates);
    return out;
}

static PyObject *Kernel_last_wrench(Kernel *self, PyObject *unused) {
    (void)unused;
    return Py_BuildValue("(NN)", float_seq(self->last_force, 3, 0), float_seq(self->last_torque, 3, 0));
}

/* One physics step: read the base state, run the controllers, apply the rotor resultant (+ extra
 * force / torque), and stepSimulation if `advance`. Returns 0, or -1 with a Python error set. */
static int physics_step(Kernel *self, double *rpm, double *cmd, const double *command, RateState *rs,
                        double *v_integral, int use_rate, int use_vel, const double *ef, const double *et,
                        int advance, double *thrusts, double *yaw) {
    int ok = -1;
    PyObject *pose = NULL, *mat = NULL, *vel = NULL, *res = NULL;
    double m[9], com[3], v[3] = {0, 0, 0}, force[3], torque[3];
    pose = call_kw(self, self->get_pose, PyTuple_Pack(1, self->body));
    if (pose == NULL || read_doubles(PyTuple_GET_ITEM(pose, 0), com, 3, "position") < 0) goto done;
    mat = PyObject_CallOneArg(self->get_matrix, PyTuple_GET_ITEM(pose, 1));
    if (mat == NULL || read_doubles(mat, m, 9, "rotation") < 0) goto done;
    if (use_rate || self->rotor.drag) {
        vel = call_kw(self, self->get_vel, PyTuple_Pack(1, self->body));
        if (vel == NULL || read_doubles(PyTuple_GET_ITEM(vel, 0), v, 3, "velocity") < 0) goto done;
    }
    if (use_rate) {
        double ang[3], rates[3], thrust = command[0], rate_cmd[3] = {command[1], command[2], command[3]};
        if (read_doubles(PyTuple_GET_ITEM(vel, 1), ang, 3, "angular velocity") < 0) goto done;
        for (int i = 0; i < 3; i++) rates[i] = m[i] * ang[0] + m[3 + i] * ang[1] + m[6 + i] * ang[2];
        if (use_vel) { /* command: [vx, vy, vz, yaw rate] */
            double out[3];
            velocity_law(&self->vel, command, m, v, v_integral, out);
            thrust = out[0], rate_cmd[0] = out[1], rate_cmd[1] = out[2];
        }
        rate_law(&self->rate, rs, thrust, rate_cmd, rates, self->rotor.max_rpm, cmd);
    }
    rotor_wrench(&self->rotor, rpm, cmd, m, com[2], v, thrusts, yaw, force, torque);
    for (int i = 0; i < 3; i++) force[i] += ef[i], torque[i] += et[i];
    memcpy(self->last_force, force, sizeof force);
    memcpy(self->last_torque, torque, sizeof torque);
    PyObject *f = float_seq(force, 3, 0);
    if (f == NULL) goto done;
    res = call_kw(self, self->apply_force, PyTuple_Pack(5, self->body, self->base_link, f, PyTuple_GET_ITEM(pose, 0),
                                                          self->world_frame));
    Py_DECREF(f);
    if (res == NULL) goto done;
    Py_CLEAR(res);
    PyObject *t = float_seq(torque, 3, 0);
    if (t == NULL) goto done;
    res = call_kw(self, self->apply_torque, PyTuple_Pack(4, self->body, self->base_link, t, self->world_frame));
    Py_DECREF(t);
    if (res == NULL) goto done;
    Py_CLEAR(res);
    if (advance && (res = PyObject_Call(self->step_sim, empty_args, self->kwargs)) == NULL) goto done;
    ok = 0;
done:
    Py_XDECREF(res);
    Py_XDECREF(pose);
    Py_XDECREF(mat);
    Py_XDECREF(vel);
    return ok;
}

/* run(n, dynamics, controller, command, extra_force, extra_torque, read_state, velocity_controller,
 * advance): QuadrotorDynamics.run (see its docstring). advance=False: one physics step's forces
 * without stepSimulation (n must be 1). */
static PyObject *Kernel_run(Kernel *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "run() takes 9 arguments");
        return NULL;
    }
    if (!self->has_rotor) {
        PyErr_SetString(PyExc_RuntimeError, "run() before set_rotor()");
        return NULL;
    }
    long n = PyLong_AsLong(args[0]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    PyObject *dyn = args[1], *ctrl = args[2], *vctrl = args[7];
    int use_rate = ctrl != Py_None, use_vel = vctrl != Py_None;
    int read_state = PyObject_IsTrue(args[6]), advance = PyObject_IsTrue(args[8]);
    if (read_state < 0 || advance < 0) return NULL;
    if ((use_rate && !self->has_rate) || (use_vel && (!self->has_vel || !use_rate))) {
        PyErr_SetString(PyExc_RuntimeError, "run() with a controller the kernel was not given (set_controller / "
                                            "set_velocity_controller; the velocity loop needs the rate loop)");
        return NULL;
    }
    if (!advance && n != 1) {
        PyErr_SetString(PyExc_ValueError, "run(advance=False) applies one physics step's forces: n must be 1");
        return NULL;
    }
    double rpm[4], cmd[4], command[4] = {0, 0, 0, 0}, ef[3] = {0, 0, 0}, et[3] = {0, 0, 0}, v_integral[3] = {0, 0, 0};
    double thrusts[4], yaw = 0.0;
    RateState rs = {{0, 0, 0}, {0, 0, 0}, 0};
    if (attr_doubles(dyn, s_rpm, rpm, 4, "_rpm") < 0 || attr_doubles(dyn, s_rpm_cmd, cmd, 4, "_rpm_cmd") < 0 ||
        (args[4] != Py_None && read_doubles(args[4], ef, 3, "extra_force") < 0) ||
        (args[5] != Py_None && read_doubles(args[5], et, 3, "extra_torque") < 0) ||
        (use_rate && (read_doubles(args[3], command, 4, "command") < 0 || read_rate_state(ctrl, &rs) < 0)) ||
        (use_vel && attr_doubles(vctrl, s_integral, v_integral, 3, "velocity _integral") < 0))
        return NULL;
    for (long step = 0; step < n; step++)
        if (physics_step(self, rpm, cmd, command, &rs, v_integral, use_rate, use_vel, ef, et, advance, thrusts,
                         &yaw) < 0)
            return NULL;
    if (n > 0) {
        PyObject *thr = float_seq(thrusts, 4, 0), *y = PyFloat_FromDouble(yaw);
        int bad = thr == NULL || y == NULL || set_floats(dyn, s_rpm, rpm, 4, 1) < 0 ||
                  PyObject_SetAttr(dyn, s_thrusts, thr) < 0 || PyObject_SetAttr(dyn, s_yaw_torque, y) < 0 ||
                  (use_rate && (set_floats(dyn, s_rpm_cmd, cmd, 4, 1) < 0 || write_rate_state(ctrl, &rs) < 0)) ||
                  (use_vel && set_floats(vctrl, s_integral, v_integral, 3, 1) < 0);
        Py_XDECREF(thr);
        Py_XDECREF(y);
        if (bad) return NULL;
    }
    if (read_state) return Kernel_state(self, NULL);
    Py_RETURN_NONE;
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
     "run(n, dynamics, controller, command, extra_force, extra_torque, read_state, velocity_controller, advance)."},
    {"state", (PyCFunction)Kernel_state, METH_NOARGS,
     "state(): (position, rotation (9, row-major), linear velocity, body rates), float tuples."},
    {"last_wrench", (PyCFunction)Kernel_last_wrench, METH_NOARGS,
     "last_wrench(): (force N, torque N·m), world frame, applied at the centre of mass in the last physics step."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sim2real.sim._quadkernel.Kernel",
    .tp_doc = "The rotor/controller physics-step loop of one quadrotor body: Kernel(client, body).",
    .tp_basicsize = sizeof(Kernel),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_methods = Kernel_methods,
};

/* ---------------------------------------------------------------- the controllers on their own */

/* rate_command(constants, controller, thrust, rate_cmd, rate): rotor speeds (4,) rpm; the controller's
 * _integral and _prev_rate are read and written. */
static PyObject *rate_command(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    RateConsts k;
    RateState st;
    double thrust, w_cmd[3], w[3], rpm[4];
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "rate_command() takes 5 arguments");
        return NULL;
    }
    if (parse_rate(args[0], &k) < 0 || read_rate_state(args[1], &st) < 0) return NULL;
    thrust = PyFloat_AsDouble(args[2]);
    if ((thrust == -1.0 && PyErr_Occurred()) || read_doubles(args[3], w_cmd, 3, "rate_cmd") < 0 ||
        read_doubles(args[4], w, 3, "rate") < 0)
        return NULL;
    rate_law(&k, &st, thrust, w_cmd, w, INFINITY, rpm);
    if (write_rate_state(args[1], &st) < 0) return NULL;
    return float_seq(rpm, 4, 1);
}

/* mixer(constants, thrust, torque): rotor thrusts (4,) N. */
static PyObject *mixer(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    RateConsts k;
    double thrust, tau[3], out[4];
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "mixer() takes 3 arguments");
        return NULL;
    }
    if (parse_rate(args[0], &k) < 0) return NULL;
    thrust = PyFloat_AsDouble(args[1]);
    if ((thrust == -1.0 && PyErr_Occurred()) || read_doubles(args[2], tau, 3, "torque") < 0) return NULL;
    mix(&k, thrust, tau, out);
    return float_seq(out, 4, 1);
}

/* velocity_command(constants, controller, velocity_cmd, rotation, velocity): (thrust N, roll rate,
 * pitch rate rad/s); the controller's _integral is read and written. */
static PyObject *velocity_command(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    VelConsts k;
    double vcmd[3], rot[9], v[3], integral[3], out[3];
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "velocity_command() takes 5 arguments");
        return NULL;
    }
    if (parse_vel(args[0], &k) < 0 || attr_doubles(args[1], s_integral, integral, 3, "_integral") < 0 ||
        read_doubles(args[2], vcmd, 3, "velocity_cmd") < 0 || read_doubles(args[3], rot, 9, "rotation") < 0 ||
        read_doubles(args[4], v, 3, "velocity") < 0)
        return NULL;
    velocity_law(&k, vcmd, rot, v, integral, out);
    if (set_floats(args[1], s_integral, integral, 3, 1) < 0) return NULL;
    return float_seq(out, 3, 0);
}

static PyMethodDef module_methods[] = {
    {"rate_command", (PyCFunction)(void (*)(void))rate_command, METH_FASTCALL,
     "rate_command(constants, controller, thrust, rate_cmd, rate): rotor speeds (rpm)."},
    {"mixer", (PyCFunction)(void (*)(void))mixer, METH_FASTCALL,
     "mixer(constants, thrust, torque): rotor thrusts (N)."},
    {"velocity_command", (PyCFunction)(void (*)(void))velocity_command, METH_FASTCALL,
     "velocity_command(constants, controller, velocity_cmd, rotation, velocity): (thrust, roll rate, pitch rate)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "_quadkernel", "The quadrotor's per-physics-step rotor and controller kernel.", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__quadkernel(void) {
    if (PyType_Ready(&KernelType) < 0) return NULL;
    empty_args = PyTuple_New(0);
    s_rpm = PyUnicode_InternFromString("_rpm");
    s_rpm_cmd = PyUnicode_InternFromString("_rpm_cmd");
    s_thrusts = PyUnicode_InternFromString("_thrusts");
    s_yaw_torque = PyUnicode_InternFromString("_yaw_torque");
    s_integral = PyUnicode_InternFromString("_integral");
    s_prev_rate = PyUnicode_InternFromString("_prev_rate");
    if (!empty_args || !s_rpm || !s_rpm_cmd || !s_thrusts || !s_yaw_torque || !s_integral || !s_prev_rate) return NULL;
    PyObject *m = PyModule_Create(&kernel_module);
    if (m == NULL) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
