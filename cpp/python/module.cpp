// The _native module: each family's bindings (bind_<family>.cpp), and the settings that belong
// to no family: threads, the kernel path (ISA) and the build's description.
// Only cpp/python/ includes pybind11; everything below it is plain C++ on raw pointers.
#include <pybind11/pybind11.h>

#include <string>

#include "core/isa.h"
#include "core/parallel.h"
#include "python/checks.h"

namespace lamina::python {

void bind_gemm(py::module_& m);
void bind_dense(py::module_& m);
void bind_conv(py::module_& m);
void bind_activations(py::module_& m);
void bind_losses(py::module_& m);
void bind_optim(py::module_& m);
void bind_regularization(py::module_& m);
void bind_plan(py::module_& m);
void bind_pooling(py::module_& m);
void bind_normalization(py::module_& m);
void bind_recurrent(py::module_& m);

namespace {

py::dict build_info() {
    py::dict info;
    info["version"] = LAMINA_VERSION;
    info["compiler"] = LAMINA_COMPILER;
    info["openmp"] = have_openmp();
#ifdef LAMINA_HAVE_OPENMP
    info["openmp_version"] = _OPENMP;
#endif
    info["isa"] = active_isa_name();
    py::list usable;  // every kernel path this build could run on this CPU, widest first
    for (Isa isa : kAllIsas)
        if (isa_supported(isa)) usable.append(isa_name(isa));
    info["isa_supported"] = usable;
    info["cpu_avx2_fma"] = cpu_has_avx2_fma();
    info["cpu_avx512"] = cpu_has_avx512();
    const CpuModel& cpu = cpu_model();
    info["cpu"] = cpu.name;
    info["cpu_vendor"] = cpu.vendor;
    info["cpu_family"] = cpu.family;
    info["cpu_model"] = cpu.model;
    info["isa_choice"] = isa_choice_reason();
    info["num_threads"] = get_num_threads();
    return info;
}

}  // namespace

}  // namespace lamina::python

PYBIND11_MODULE(_native, m) {
    using namespace lamina;
    using namespace lamina::python;
    m.doc() = "lamina's native kernels; use lamina.ops, which adds argument coercion";
    bind_gemm(m);
    bind_dense(m);
    bind_conv(m);
    bind_activations(m);
    bind_losses(m);
    bind_optim(m);
    bind_regularization(m);
    bind_plan(m);
    bind_pooling(m);
    bind_normalization(m);
    bind_recurrent(m);
    m.def("set_num_threads", [](int n) {
        if (n < 1) fail_value("number of threads must be >= 1, got " + std::to_string(n));
        set_num_threads(n);
    });
    m.def("get_num_threads", &get_num_threads);
    m.def("build_info", &build_info);
    m.def("isa", &active_isa_name);
    m.def("set_isa", [](const std::string& name) {
        if (!set_isa(name.c_str()))
            fail_value("kernel path '" + name + "' is unknown or not supported by this CPU");
    });
}
