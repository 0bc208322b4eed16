/*
 * shiftnet_bridge.c: the native half of the `core.shiftnet` VapourSynth namespace.
 *
 * VapourSynth's Python module cannot register a namespace, so this small API4 plugin does it
 * and keeps no policy of its own:
 *   - Denoise / Deblur forward every argument to Python (vsshiftnet.vs.entry._plugin_entry),
 *     which builds the filter graph and hands the resulting node back.
 *   - BridgeTake / BridgeGive move nodes between C and Python through a keyed table, because the
 *     Python module cannot wrap a raw VSNode*.
 *   - Run is a generic frame filter: for output frame n it asks a Python step object which
 *     source frames it needs (requested in arInitial, never fetched with a blocking getFrame),
 *     then hands them to the step's process() and copies the returned planes into a new frame.
 *
 * Built without linking libpython: Python symbols resolve from the host process, as for any
 * extension module. Limited API 3.11, so one build serves every CPython >= 3.11.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#endif
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "VapourSynth4.h"

/* Bumped whenever the C <-> Python protocol changes; Python checks it (plugin minor version). */
#define SHIFTNET_BRIDGE_ABI 5  /* 2: matrix as data; 3: max_memory; 4: backend, threads, num_streams; 5: ensemble */
#define ENTRY_MODULE "vsshiftnet.vs.entry"
#define ERRBUF 1024

/* ------------------------------------------------------------------------------------------ */
/* Python liveness                                                                            */

typedef int (*IsFinalizingFn)(void);

/* Py_IsFinalizing is public only from 3.13 (private _Py_IsFinalizing before), so look it up. */
static int python_alive(void) {
    static IsFinalizingFn fin = NULL;
    static int resolved = 0;
    if (!Py_IsInitialized())
        return 0;
    if (!resolved) {
        fin = (IsFinalizingFn)dlsym(RTLD_DEFAULT, "Py_IsFinalizing");
        if (!fin)
            fin = (IsFinalizingFn)dlsym(RTLD_DEFAULT, "_Py_IsFinalizing");
        resolved = 1;
    }
    return !(fin && fin());
}

/* ------------------------------------------------------------------------------------------ */
/* Node table: integer key -> VSNode*, for crossing nodes between C and Python.               */

typedef struct NodeSlot {
    int64_t key;
    VSNode *node;
    const VSAPI *vsapi;
    struct NodeSlot *next;
} NodeSlot;

static pthread_mutex_t g_table_lock = PTHREAD_MUTEX_INITIALIZER;
static NodeSlot *g_table = NULL;
static int64_t g_next_key = 1;

static int64_t table_new_key(void) {
    pthread_mutex_lock(&g_table_lock);
    int64_t k = g_next_key++;
    pthread_mutex_unlock(&g_table_lock);
    return k;
}

/* Takes ownership of node. Replaces (and frees) any node already stored under key. */
static void table_put(int64_t key, VSNode *node, const VSAPI *vsapi) {
    NodeSlot *slot = (NodeSlot *)malloc(sizeof(NodeSlot));
    VSNode *old = NULL;
    const VSAPI *old_api = NULL;
    if (!slot) {
        vsapi->freeNode(node);
        return;
    }
    pthread_mutex_lock(&g_table_lock);
    for (NodeSlot *s = g_table; s; s = s->next) {
        if (s->key == key) {
            old = s->node;
            old_api = s->vsapi;
            s->node = node;
            s->vsapi = vsapi;
            pthread_mutex_unlock(&g_table_lock);
            free(slot);
            old_api->freeNode(old);
            return;
        }
    }
    slot->key = key;
    slot->node = node;
    slot->vsapi = vsapi;
    slot->next = g_table;
    g_table = slot;
    pthread_mutex_unlock(&g_table_lock);
}

/* Returns the owned node stored under key (removing it), or NULL. */
static VSNode *table_pop(int64_t key) {
    VSNode *node = NULL;
    pthread_mutex_lock(&g_table_lock);
    for (NodeSlot **p = &g_table; *p; p = &(*p)->next) {
        if ((*p)->key == key) {
            NodeSlot *s = *p;
            *p = s->next;
            node = s->node;
            free(s);
            break;
        }
    }
    pthread_mutex_unlock(&g_table_lock);
    return node;
}

static void VS_CC takeCreate(const VSMap *in, VSMap *out, void *ud, VSCore *core,
                             const VSAPI *vsapi) {
    (void)ud;
    (void)core;
    int64_t key = vsapi->mapGetInt(in, "key", 0, NULL);
    VSNode *node = table_pop(key);
    if (!node) {
        vsapi->mapSetError(out, "shiftnet.BridgeTake: no node stored under this key");
        return;
    }
    vsapi->mapConsumeNode(out, "clip", node, maAppend);
}

static void VS_CC giveCreate(const VSMap *in, VSMap *out, void *ud, VSCore *core,
                             const VSAPI *vsapi) {
    (void)ud;
    (void)core;
    (void)out;
    VSNode *node = vsapi->mapGetNode(in, "clip", 0, NULL);
    int64_t key = vsapi->mapGetInt(in, "key", 0, NULL);
    table_put(key, node, vsapi);
}

/* ------------------------------------------------------------------------------------------ */
/* Python exception -> message                                                                */

/* Fetches and clears the pending Python exception into buf as "<prefix>: Type: message".
   A message that already names the function (our own vs.Error) is passed through as is. */
static void format_py_error(const char *prefix, char *buf, size_t size) {
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyErr_Fetch(&type, &value, &tb);
    if (!type) {
        snprintf(buf, size, "%s: unknown error in the Python step", prefix);
        return;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    const char *msg = NULL;
    const char *tname = NULL;
    PyObject *s = value ? PyObject_Str(value) : NULL;
    PyObject *n = PyType_GetName((PyTypeObject *)type);
    if (s)
        msg = PyUnicode_AsUTF8AndSize(s, NULL);
    if (n)
        tname = PyUnicode_AsUTF8AndSize(n, NULL);
    PyErr_Clear();
    if (!msg)
        msg = "(no message)";
    if (!tname)
        tname = "Exception";
    if (strncmp(msg, prefix, strlen(prefix)) == 0)
        snprintf(buf, size, "%s", msg);
    else
        snprintf(buf, size, "%s: %s: %s", prefix, tname, msg);
    Py_XDECREF(s);
    Py_XDECREF(n);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* ------------------------------------------------------------------------------------------ */
/* Python types: Frame (a source frame handed to process()) and Plane (a read-only 2-D buffer) */

/* Both types hold the Python Core object (`keepalive`) as well as their frame: a numpy view
   kept past the script's end must not free its frame after the core is gone. */
typedef struct {
    PyObject_HEAD
    const VSFrame *frame; /* own reference: a numpy view keeps the Plane, the Plane the frame */
    const VSAPI *vsapi;
    PyObject *keepalive;
    Py_ssize_t shape[2];
    Py_ssize_t strides[2];
    Py_ssize_t itemsize;
    const char *format;
    const uint8_t *ptr;
} PlaneObject;

typedef struct {
    PyObject_HEAD
    const VSFrame *frame;
    const VSAPI *vsapi;
    PyObject *keepalive;
} FrameObject;

static PyObject *g_plane_type = NULL;
static PyObject *g_frame_type = NULL;

static void plane_dealloc(PyObject *self) {
    PlaneObject *p = (PlaneObject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    if (p->frame)
        p->vsapi->freeFrame(p->frame);
    Py_XDECREF(p->keepalive);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static int plane_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    PlaneObject *p = (PlaneObject *)self;
    int contiguous = p->strides[0] == p->shape[1] * p->itemsize;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "shiftnet plane buffers are read-only");
        return -1;
    }
    if ((flags & PyBUF_STRIDES) != PyBUF_STRIDES && !contiguous) {
        PyErr_SetString(PyExc_BufferError, "shiftnet plane buffer is strided");
        return -1;
    }
    view->buf = (void *)p->ptr;
    view->obj = self;
    Py_INCREF(self);
    view->len = p->shape[0] * p->shape[1] * p->itemsize;
    view->readonly = 1;
    view->itemsize = p->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? (char *)p->format : NULL;
    view->ndim = 2;
    view->shape = (flags & PyBUF_ND) == PyBUF_ND ? p->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? p->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    if (!view->shape)
        view->ndim = 1;
    return 0;
}

static void plane_releasebuffer(PyObject *self, Py_buffer *view) {
    (void)self;
    (void)view;
}

static PyType_Slot plane_slots[] = {
    {Py_tp_dealloc, (void *)plane_dealloc},
    {Py_bf_getbuffer, (void *)plane_getbuffer},
    {Py_bf_releasebuffer, (void *)plane_releasebuffer},
    {Py_tp_doc, (void *)"One plane of a VapourSynth frame as a read-only 2-D buffer."},
    {0, NULL},
};

static PyType_Spec plane_spec = {
    "shiftnet_bridge.Plane", sizeof(PlaneObject), 0, Py_TPFLAGS_DEFAULT, plane_slots,
};

static const char *buffer_format(const VSVideoFormat *f) {
    if (f->sampleType == stFloat)
        return f->bytesPerSample == 2 ? "e" : "f";
    switch (f->bytesPerSample) {
    case 1: return "B";
    case 2: return "H";
    default: return "I";
    }
}

static PyObject *frame_plane(PyObject *self, PyObject *arg) {
    FrameObject *fo = (FrameObject *)self;
    long i = PyLong_AsLong(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    const VSVideoFormat *f = fo->vsapi->getVideoFrameFormat(fo->frame);
    if (i < 0 || i >= f->numPlanes) {
        PyErr_SetString(PyExc_IndexError, "plane index out of range");
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)g_plane_type;
    allocfunc alloc = (allocfunc)PyType_GetSlot(tp, Py_tp_alloc);
    PlaneObject *p = (PlaneObject *)alloc(tp, 0);
    if (!p)
        return NULL;
    p->vsapi = fo->vsapi;
    p->keepalive = fo->keepalive;
    Py_XINCREF(p->keepalive);
    p->frame = fo->vsapi->addFrameRef(fo->frame);
    p->itemsize = f->bytesPerSample;
    p->format = buffer_format(f);
    p->shape[0] = fo->vsapi->getFrameHeight(fo->frame, (int)i);
    p->shape[1] = fo->vsapi->getFrameWidth(fo->frame, (int)i);
    p->strides[0] = fo->vsapi->getStride(fo->frame, (int)i);
    p->strides[1] = f->bytesPerSample;
    p->ptr = fo->vsapi->getReadPtr(fo->frame, (int)i);
    if (!p->ptr) {
        Py_DECREF(p);
        PyErr_SetString(PyExc_ValueError, "GPU-resident frames are not supported; "
                        "download them with core.std.GPUDownload first");
        return NULL;
    }
    return (PyObject *)p;
}

static PyObject *frame_num_planes(PyObject *self, PyObject *unused) {
    (void)unused;
    FrameObject *fo = (FrameObject *)self;
    return PyLong_FromLong(fo->vsapi->getVideoFrameFormat(fo->frame)->numPlanes);
}

/* prop(key, default=None): first element of an int/float/data property, default if absent. */
static PyObject *frame_prop(PyObject *self, PyObject *args) {
    FrameObject *fo = (FrameObject *)self;
    const char *key;
    PyObject *dflt = Py_None;
    if (!PyArg_ParseTuple(args, "s|O", &key, &dflt))
        return NULL;
    const VSMap *m = fo->vsapi->getFramePropertiesRO(fo->frame);
    int err = 0;
    switch (fo->vsapi->mapGetType(m, key)) {
    case ptInt: {
        int64_t v = fo->vsapi->mapGetInt(m, key, 0, &err);
        if (!err)
            return PyLong_FromLongLong(v);
        break;
    }
    case ptFloat: {
        double v = fo->vsapi->mapGetFloat(m, key, 0, &err);
        if (!err)
            return PyFloat_FromDouble(v);
        break;
    }
    case ptData: {
        const char *d = fo->vsapi->mapGetData(m, key, 0, &err);
        int sz = fo->vsapi->mapGetDataSize(m, key, 0, &err);
        if (!err)
            return PyBytes_FromStringAndSize(d, sz);
        break;
    }
    default:
        break;
    }
    Py_INCREF(dflt);
    return dflt;
}

static void frame_dealloc(PyObject *self) {
    FrameObject *fo = (FrameObject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    if (fo->frame)
        fo->vsapi->freeFrame(fo->frame);
    Py_XDECREF(fo->keepalive);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef frame_methods[] = {
    {"plane", frame_plane, METH_O, "plane(i) -> read-only 2-D buffer of plane i"},
    {"num_planes", frame_num_planes, METH_NOARGS, "number of planes"},
    {"prop", frame_prop, METH_VARARGS, "prop(key, default=None) -> first value of a prop"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot frame_slots[] = {
    {Py_tp_dealloc, (void *)frame_dealloc},
    {Py_tp_methods, (void *)frame_methods},
    {Py_tp_doc, (void *)"A source frame handed to a shiftnet Python step."},
    {0, NULL},
};

static PyType_Spec frame_spec = {
    "shiftnet_bridge.Frame", sizeof(FrameObject), 0, Py_TPFLAGS_DEFAULT, frame_slots,
};

/* Needs the GIL. */
static int ensure_types(void) {
    if (!g_plane_type)
        g_plane_type = PyType_FromSpec(&plane_spec);
    if (!g_frame_type)
        g_frame_type = PyType_FromSpec(&frame_spec);
    return g_plane_type && g_frame_type ? 0 : -1;
}

/* Wraps frame (ownership transferred, also on failure). Needs the GIL. */
static PyObject *wrap_frame(const VSFrame *frame, const VSAPI *vsapi, PyObject *keepalive) {
    PyTypeObject *tp = (PyTypeObject *)g_frame_type;
    allocfunc alloc = (allocfunc)PyType_GetSlot(tp, Py_tp_alloc);
    FrameObject *fo = (FrameObject *)alloc(tp, 0);
    if (!fo) {
        vsapi->freeFrame(frame);
        return NULL;
    }
    fo->frame = frame;
    fo->vsapi = vsapi;
    fo->keepalive = keepalive;
    Py_XINCREF(keepalive);
    return (PyObject *)fo;
}

/* ------------------------------------------------------------------------------------------ */
/* Denoise / Deblur: forward everything to Python                                            */

typedef struct {
    int64_t *keys;
    int count;
    int cap;
} KeyList;

static int keylist_add(KeyList *k, int64_t key) {
    if (k->count == k->cap) {
        int cap = k->cap ? k->cap * 2 : 8;
        int64_t *n = (int64_t *)realloc(k->keys, sizeof(int64_t) * (size_t)cap);
        if (!n)
            return -1;
        k->keys = n;
        k->cap = cap;
    }
    k->keys[k->count++] = key;
    return 0;
}

/* Converts one argument to a Python list; nodes are stashed and passed as their keys.
   Needs the GIL. Returns a new reference or NULL with a Python error set. */
static PyObject *arg_to_list(const VSMap *in, const char *key, const VSAPI *vsapi, KeyList *ks,
                             int *is_node) {
    int num = vsapi->mapNumElements(in, key);
    int type = vsapi->mapGetType(in, key);
    PyObject *list = PyList_New(0);
    *is_node = 0;
    if (!list)
        return NULL;
    for (int i = 0; i < num; i++) {
        PyObject *item = NULL;
        switch (type) {
        case ptInt:
            item = PyLong_FromLongLong(vsapi->mapGetInt(in, key, i, NULL));
            break;
        case ptFloat:
            item = PyFloat_FromDouble(vsapi->mapGetFloat(in, key, i, NULL));
            break;
        case ptData: {
            const char *d = vsapi->mapGetData(in, key, i, NULL);
            int sz = vsapi->mapGetDataSize(in, key, i, NULL);
            item = PyUnicode_DecodeUTF8(d, sz, "replace");
            break;
        }
        case ptVideoNode:
        case ptAudioNode: {
            int64_t k = table_new_key();
            if (keylist_add(ks, k) < 0) {
                PyErr_NoMemory();
                break;
            }
            table_put(k, vsapi->mapGetNode(in, key, i, NULL), vsapi);
            item = PyLong_FromLongLong(k);
            *is_node = 1;
            break;
        }
        default:
            PyErr_Format(PyExc_TypeError, "argument %s has an unsupported type", key);
            break;
        }
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(item);
    }
    return list;
}

static void VS_CC entryCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core,
                              const VSAPI *vsapi) {
    (void)core;
    const char *fname = (const char *)userData;
    char prefix[64];
    char err[ERRBUF];
    int ok = 0;
    KeyList ks = {NULL, 0, 0};
    int64_t result_key = table_new_key();
    snprintf(prefix, sizeof(prefix), "shiftnet.%s", fname);

    PyGILState_STATE gs = PyGILState_Ensure();
    PyObject *values = PyDict_New();
    PyObject *nodes = PyDict_New();
    PyObject *mod = NULL, *res = NULL;
    if (!values || !nodes)
        goto pyfail;
    for (int i = 0; i < vsapi->mapNumKeys(in); i++) {
        const char *key = vsapi->mapGetKey(in, i);
        int is_node = 0;
        PyObject *list = arg_to_list(in, key, vsapi, &ks, &is_node);
        if (!list)
            goto pyfail;
        int rc = PyDict_SetItemString(is_node ? nodes : values, key, list);
        Py_DECREF(list);
        if (rc < 0)
            goto pyfail;
    }
    mod = PyImport_ImportModule(ENTRY_MODULE);
    if (!mod)
        goto pyfail;
    res = PyObject_CallMethod(mod, "_plugin_entry", "sOOL", fname, values, nodes,
                              (long long)result_key);
    if (!res)
        goto pyfail;
    ok = 1;
    goto done;
pyfail:
    format_py_error(prefix, err, sizeof(err));
done:
    Py_XDECREF(res);
    Py_XDECREF(mod);
    Py_XDECREF(values);
    Py_XDECREF(nodes);
    PyGILState_Release(gs);

    /* Nodes Python did not take (it failed early) would otherwise leak in the table. */
    for (int i = 0; i < ks.count; i++) {
        VSNode *left = table_pop(ks.keys[i]);
        if (left)
            vsapi->freeNode(left);
    }
    free(ks.keys);
    VSNode *result = table_pop(result_key);
    if (!ok) {
        if (result)
            vsapi->freeNode(result);
        vsapi->mapSetError(out, err);
        return;
    }
    if (!result) {
        snprintf(err, sizeof(err), "%s: internal error: Python returned no clip", prefix);
        vsapi->mapSetError(out, err);
        return;
    }
    vsapi->mapConsumeNode(out, "clip", result, maAppend);
}

/* ------------------------------------------------------------------------------------------ */
/* Run: the generic frame filter                                                              */

typedef struct {
    VSNode **nodes;
    int *num_frames;
    int num_nodes;
    VSVideoInfo vi;
    PyObject *step;      /* owned; released in runFree only while Python is alive */
    PyObject *keepalive; /* owned: the Python Core object, handed to Frame and Plane objects */
    char name[64];
} RunData;

typedef struct {
    int count;
    int *clip;
    int *frame;
} Request;

static void request_free(Request *r) {
    if (!r)
        return;
    free(r->clip);
    free(r->frame);
    free(r);
}

/* Calls step.frames_needed(n). Needs the GIL. NULL with a Python error set on failure. */
static Request *ask_frames(RunData *d, int n) {
    PyObject *res = PyObject_CallMethod(d->step, "frames_needed", "i", n);
    if (!res)
        return NULL;
    Request *r = NULL;
    Py_ssize_t len = PySequence_Size(res);
    if (len < 0)
        goto fail;
    r = (Request *)calloc(1, sizeof(Request));
    if (!r)
        goto nomem;
    r->clip = (int *)malloc(sizeof(int) * (size_t)(len + 1));
    r->frame = (int *)malloc(sizeof(int) * (size_t)(len + 1));
    if (!r->clip || !r->frame)
        goto nomem;
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *item = PySequence_GetItem(res, i);
        PyObject *a = item ? PySequence_GetItem(item, 0) : NULL;
        PyObject *b = item ? PySequence_GetItem(item, 1) : NULL;
        long c = a ? PyLong_AsLong(a) : -1;
        long f = b ? PyLong_AsLong(b) : -1;
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_XDECREF(item);
        if (PyErr_Occurred())
            goto fail;
        if (c < 0 || c >= d->num_nodes) {
            PyErr_Format(PyExc_ValueError, "frames_needed(%d): clip index %ld out of range", n, c);
            goto fail;
        }
        if (f < 0 || f >= d->num_frames[c]) {
            PyErr_Format(PyExc_ValueError, "frames_needed(%d): frame %ld of clip %ld is outside "
                         "the clip (%d frames)", n, f, c, d->num_frames[c]);
            goto fail;
        }
        r->clip[i] = (int)c;
        r->frame[i] = (int)f;
        r->count++;
    }
    Py_DECREF(res);
    return r;
nomem:
    PyErr_NoMemory();
fail:
    Py_DECREF(res);
    request_free(r);
    return NULL;
}

static int format_char_ok(const char *fmt, const VSVideoFormat *f) {
    if (!fmt || !*fmt)
        fmt = "B";
    char c = fmt[strlen(fmt) - 1];
    if (f->sampleType == stFloat)
        return (f->bytesPerSample == 4 && c == 'f') || (f->bytesPerSample == 2 && c == 'e');
    return c == 'B' || c == 'H' || c == 'I' || c == 'L';
}

/* Calls step.process(n, frames), checks the planes it returns and copies them into dst.
   frames are owned and consumed. Returns the new frame, or NULL with err filled. */
static VSFrame *run_process(RunData *d, int n, const VSFrame *src, const VSFrame **frames,
                            int count, VSCore *core, const VSAPI *vsapi, char *err,
                            size_t errsize) {
    const VSVideoFormat *fmt = &d->vi.format;
    Py_buffer views[3];
    int nviews = 0;
    int ok = 0;
    PyObject *res = NULL;
    VSFrame *dst = NULL;

    PyGILState_STATE gs = PyGILState_Ensure();
    PyObject *list = ensure_types() < 0 ? NULL : PyList_New(count);
    if (!list) {
        for (int i = 0; i < count; i++)
            vsapi->freeFrame(frames[i]);
        goto pyfail;
    }
    for (int i = 0; i < count; i++) {
        PyObject *fo = wrap_frame(frames[i], vsapi, d->keepalive);
        frames[i] = NULL;
        if (!fo) {
            for (int j = i + 1; j < count; j++)
                vsapi->freeFrame(frames[j]);
            Py_DECREF(list);
            goto pyfail;
        }
        PyList_SetItem(list, i, fo); /* steals */
    }
    res = PyObject_CallMethod(d->step, "process", "iO", n, list);
    Py_DECREF(list);
    if (!res)
        goto pyfail;
    if (PySequence_Size(res) != fmt->numPlanes) {
        PyErr_Clear();
        snprintf(err, errsize, "%s: internal error: process() must return %d planes", d->name,
                 fmt->numPlanes);
        goto unlock;
    }
    for (int p = 0; p < fmt->numPlanes; p++) {
        PyObject *item = PySequence_GetItem(res, p);
        if (!item)
            goto pyfail;
        int rc = PyObject_GetBuffer(item, &views[p], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT);
        Py_DECREF(item);
        if (rc < 0)
            goto pyfail;
        nviews++;
        Py_ssize_t w = d->vi.width >> (p ? fmt->subSamplingW : 0);
        Py_ssize_t h = d->vi.height >> (p ? fmt->subSamplingH : 0);
        if (views[p].ndim != 2 || views[p].shape[0] != h || views[p].shape[1] != w ||
            views[p].itemsize != fmt->bytesPerSample || !format_char_ok(views[p].format, fmt)) {
            snprintf(err, errsize,
                     "%s: internal error: plane %d from process() must be a C-contiguous "
                     "(%zd, %zd) array with %d-byte %s samples", d->name, p, h, w,
                     fmt->bytesPerSample, fmt->sampleType == stFloat ? "float" : "unsigned");
            goto unlock;
        }
    }
    ok = 1;
    goto unlock;
pyfail:
    format_py_error(d->name, err, errsize);
unlock:
    PyGILState_Release(gs);

    /* The held buffer views keep the arrays alive, so the copy runs without the GIL. */
    if (ok) {
        dst = vsapi->newVideoFrame(fmt, d->vi.width, d->vi.height, src, core);
        for (int p = 0; p < fmt->numPlanes; p++) {
            ptrdiff_t stride = vsapi->getStride(dst, p);
            uint8_t *wp = vsapi->getWritePtr(dst, p);
            const uint8_t *rp = (const uint8_t *)views[p].buf;
            size_t row = (size_t)views[p].shape[1] * (size_t)fmt->bytesPerSample;
            for (Py_ssize_t y = 0; y < views[p].shape[0]; y++)
                memcpy(wp + y * stride, rp + (size_t)y * row, row);
        }
    }
    if (nviews || res) {
        gs = PyGILState_Ensure();
        for (int p = 0; p < nviews; p++)
            PyBuffer_Release(&views[p]);
        Py_XDECREF(res);
        PyGILState_Release(gs);
    }
    return dst;
}

static const VSFrame *VS_CC runGetFrame(int n, int ar, void *instanceData, void **frameData,
                                        VSFrameContext *ctx, VSCore *core, const VSAPI *vsapi) {
    RunData *d = (RunData *)instanceData;
    char err[ERRBUF];
    if (ar == arInitial) {
        PyGILState_STATE gs = PyGILState_Ensure();
        Request *r = ask_frames(d, n);
        if (!r)
            format_py_error(d->name, err, sizeof(err));
        PyGILState_Release(gs);
        if (!r) {
            vsapi->setFilterError(err, ctx);
            return NULL;
        }
        *frameData = r;
        int have_n = 0;
        for (int i = 0; i < r->count; i++) {
            /* Duplicates are harmless to the core but cost a lookup, so skip the easy ones. */
            int dup = 0;
            for (int j = 0; j < i && !dup; j++)
                dup = r->clip[j] == r->clip[i] && r->frame[j] == r->frame[i];
            if (!dup)
                vsapi->requestFrameFilter(r->frame[i], d->nodes[r->clip[i]], ctx);
            have_n |= r->clip[i] == 0 && r->frame[i] == n;
        }
        /* Frame n of clips[0] supplies the output's frame props. */
        if (!have_n)
            vsapi->requestFrameFilter(n, d->nodes[0], ctx);
    } else if (ar == arAllFramesReady) {
        Request *r = (Request *)*frameData;
        *frameData = NULL;
        const VSFrame *src = vsapi->getFrameFilter(n, d->nodes[0], ctx);
        const VSFrame **frames = (const VSFrame **)malloc(sizeof(VSFrame *) * (size_t)(r->count + 1));
        VSFrame *dst = NULL;
        if (frames) {
            for (int i = 0; i < r->count; i++)
                frames[i] = vsapi->getFrameFilter(r->frame[i], d->nodes[r->clip[i]], ctx);
            dst = run_process(d, n, src, frames, r->count, core, vsapi, err, sizeof(err));
            free(frames);
        } else {
            snprintf(err, sizeof(err), "%s: out of memory", d->name);
        }
        vsapi->freeFrame(src);
        request_free(r);
        if (!dst)
            vsapi->setFilterError(err, ctx);
        return dst;
    } else if (ar == arError) {
        request_free((Request *)*frameData);
        *frameData = NULL;
    }
    return NULL;
}

static void VS_CC runFree(void *instanceData, VSCore *core, const VSAPI *vsapi) {
    (void)core;
    RunData *d = (RunData *)instanceData;
    /* At interpreter shutdown the step object may already be gone: leak it rather than crash. */
    if (d->step && python_alive()) {
        PyGILState_STATE gs = PyGILState_Ensure();
        Py_DECREF(d->step);
        Py_XDECREF(d->keepalive);
        PyGILState_Release(gs);
    }
    for (int i = 0; i < d->num_nodes; i++)
        vsapi->freeNode(d->nodes[i]);
    free(d->nodes);
    free(d->num_frames);
    free(d);
}

static void VS_CC runCreate(const VSMap *in, VSMap *out, void *ud, VSCore *core,
                            const VSAPI *vsapi) {
    (void)ud;
    char err[ERRBUF];
    int num = vsapi->mapNumElements(in, "clips");
    RunData *d = (RunData *)calloc(1, sizeof(RunData));
    VSFilterDependency *deps = NULL;
    if (!d || num < 1) {
        vsapi->mapSetError(out, "shiftnet.Run: needs at least one clip");
        free(d);
        return;
    }
    int err_name = 0;
    const char *name = vsapi->mapGetData(in, "name", 0, &err_name);
    snprintf(d->name, sizeof(d->name), "%s", err_name ? "shiftnet.Run" : name);
    d->nodes = (VSNode **)calloc((size_t)num, sizeof(VSNode *));
    d->num_frames = (int *)calloc((size_t)num, sizeof(int));
    deps = (VSFilterDependency *)calloc((size_t)num, sizeof(VSFilterDependency));
    if (!d->nodes || !d->num_frames || !deps) {
        snprintf(err, sizeof(err), "%s: out of memory", d->name);
        goto fail;
    }
    for (int i = 0; i < num; i++) {
        d->nodes[i] = vsapi->mapGetNode(in, "clips", i, NULL);
        d->num_nodes++;
        const VSVideoInfo *vi = vsapi->getVideoInfo(d->nodes[i]);
        if (vsapi->getNodeType(d->nodes[i]) != mtVideo || !vi ||
            vi->format.colorFamily == cfUndefined || !vi->width || !vi->height) {
            snprintf(err, sizeof(err), "%s: clip %d must be video of a constant format and size",
                     d->name, i);
            goto fail;
        }
        d->num_frames[i] = vi->numFrames;
        deps[i].source = d->nodes[i];
        deps[i].requestPattern = rpGeneral;
    }
    d->vi = *vsapi->getVideoInfo(d->nodes[0]);
    int err_fmt = 0;
    int64_t fmt_id = vsapi->mapGetInt(in, "format", 0, &err_fmt);
    if (!err_fmt && !vsapi->getVideoFormatByID(&d->vi.format, (uint32_t)fmt_id, core)) {
        snprintf(err, sizeof(err), "%s: invalid output format id %lld", d->name,
                 (long long)fmt_id);
        goto fail;
    }

    PyGILState_STATE gs = PyGILState_Ensure();
    PyObject *mod = PyImport_ImportModule(ENTRY_MODULE);
    PyObject *claimed = NULL;
    if (mod) {
        /* -> (step, keepalive) */
        claimed = PyObject_CallMethod(mod, "_claim_step", "L",
                                      (long long)vsapi->mapGetInt(in, "handle", 0, NULL));
        Py_DECREF(mod);
    }
    if (claimed && !PyArg_ParseTuple(claimed, "OO", &d->step, &d->keepalive)) {
        d->step = NULL;
        d->keepalive = NULL;
    }
    if (d->step) {
        Py_INCREF(d->step);
        Py_INCREF(d->keepalive);
    }
    Py_XDECREF(claimed);
    if (!d->step)
        format_py_error(d->name, err, sizeof(err));
    PyGILState_Release(gs);
    if (!d->step)
        goto fail;

    vsapi->createVideoFilter(out, d->name, &d->vi, runGetFrame, runFree, fmParallel, deps, num, d,
                             core);
    free(deps);
    return;
fail:
    vsapi->mapSetError(out, err);
    for (int i = 0; i < d->num_nodes; i++)
        vsapi->freeNode(d->nodes[i]);
    free(d->nodes);
    free(d->num_frames);
    free(d);
    free(deps);
}

/* ------------------------------------------------------------------------------------------ */
/* Registration                                                                               */

#define COMMON_ARGS                                                                           \
    "model:data:opt;device:data:opt;fp16:int:opt;backend:data:opt;threads:int:opt;"          \
    "num_streams:int:opt;length:int:opt;length_pad:int:opt;"                                  \
    "tile:int[]:opt;tile_pad:int:opt;sc:int:opt;planes:int[]:opt;matrix:data:opt;"            \
    "max_memory:data:opt;ensemble:int:opt;"

/* Python objects of our types (a plane a script keeps, a step's frames) can outlive the core,
   which unloads its plugins when freed; their methods must stay mapped, so never unload. */
static void pin_library(void) {
    Dl_info info;
    if (dladdr((void *)pin_library, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

VS_EXTERNAL_API(void) VapourSynthPluginInit2(VSPlugin *plugin, const VSPLUGINAPI *vspapi) {
    pin_library();
    vspapi->configPlugin("com.vsshiftnet.shiftnet", "shiftnet",
                         "Shift-Net video denoising and deblurring (vsshiftnet)",
                         VS_MAKE_VERSION(1, SHIFTNET_BRIDGE_ABI), VAPOURSYNTH_API_VERSION, 0,
                         plugin);
    /* sigma may be a number or a GRAY clip (noise map). The core has no per-argument "any"
       type, so Denoise takes extra keyword arguments of any type ("any") and Python checks
       them: sigma must be passed by keyword, and misspelt names still get a clear error. */
    vspapi->registerFunction("Denoise", "clip:vnode;" COMMON_ARGS "any", "clip:vnode;",
                             entryCreate, (void *)"Denoise", plugin);
    vspapi->registerFunction("Deblur", "clip:vnode;" COMMON_ARGS, "clip:vnode;", entryCreate,
                             (void *)"Deblur", plugin);
    vspapi->registerFunction("Run", "clips:vnode[];handle:int;format:int:opt;name:data:opt;",
                             "clip:vnode;", runCreate, NULL, plugin);
    vspapi->registerFunction("BridgeTake", "key:int;", "clip:vnode;", takeCreate, NULL, plugin);
    vspapi->registerFunction("BridgeGive", "clip:vnode;key:int;", "", giveCreate, NULL, plugin);
}
