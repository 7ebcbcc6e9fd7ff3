# The Hopper forward kernel (bench/gpu/HOPPER_NOTES.md). Its files need the sm_90a target
# (wgmma, TMA) and nothing else, so they live in an object library with their own gencode
# instead of the portable architecture list. CuTe comes from the nvidia-cutlass pip package:
# with RADIAL_HOPPER=AUTO a missing package leaves the kernel out (the portable kernel then
# runs on Hopper too), with ON it is an error.
find_package(Python3 COMPONENTS Interpreter)
set(RADIAL_CUTLASS_INCLUDE "")
if(Python3_Interpreter_FOUND)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c
            "import cutlass_library, os; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source', 'include'))"
    OUTPUT_VARIABLE RADIAL_CUTLASS_INCLUDE OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _radial_cutlass_status ERROR_QUIET)
endif()
# Why the kernel cannot be built here, or empty.
set(_radial_hopper_missing "")
if(NOT EXISTS "${RADIAL_CUTLASS_INCLUDE}/cute/tensor.hpp")
  set(_radial_hopper_missing "CuTe (pip install nvidia-cutlass==4.2.0.0)")
elseif(CMAKE_CUDA_COMPILER_VERSION VERSION_LESS 12.3)
  set(_radial_hopper_missing "nvcc 12.3 or newer (found ${CMAKE_CUDA_COMPILER_VERSION})")
endif()
if(_radial_hopper_missing)
  if(RADIAL_HOPPER STREQUAL "ON")
    message(FATAL_ERROR "RADIAL_HOPPER=ON needs ${_radial_hopper_missing}")
  endif()
  message(STATUS "radial: Hopper kernel not built: needs ${_radial_hopper_missing}")
  return()
endif()
message(STATUS "radial: Hopper kernel built (CuTe from ${RADIAL_CUTLASS_INCLUDE})")

file(GLOB RADIAL_HOPPER_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu
     ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
# The schedules other than the library's (fwd_hopper_bf16_d128_<schedule>.cu) and the variants
# (fwd_hopper_bf16_d128_late_wait.cu, fwd_hopper_fp8_bf16_d128_v<n>.cu, the backward's
# bwd_hopper_variants_*.cu) are for comparison.
if(NOT RADIAL_ABLATION_KERNELS)
  list(FILTER RADIAL_HOPPER_SOURCES EXCLUDE REGEX "fwd_hopper_bf16_d128_(serial|overlap|pingpong|late_wait)\\.cu$")
  list(FILTER RADIAL_HOPPER_SOURCES EXCLUDE REGEX "fwd_hopper_fp8_bf16_d128_v[0-9]+\\.cu$")
  # The backward's comparison variants (choice variant=bwd_rs_dv, bwd_ss, bwd_early_dk).
  list(FILTER RADIAL_HOPPER_SOURCES EXCLUDE REGEX "bwd_hopper_variants_[a-z0-9_]+\\.cu$")
endif()
add_library(radial_hopper OBJECT ${RADIAL_HOPPER_SOURCES})
set_target_properties(radial_hopper PROPERTIES CUDA_ARCHITECTURES OFF POSITION_INDEPENDENT_CODE ON)
target_include_directories(radial_hopper PRIVATE ${PROJECT_SOURCE_DIR}/include
                           ${CMAKE_CURRENT_SOURCE_DIR})
if(RADIAL_ABLATION_KERNELS)
  target_compile_definitions(radial_hopper PRIVATE RADIAL_ABLATION_KERNELS=1)
endif()
target_include_directories(radial_hopper SYSTEM PRIVATE ${RADIAL_CUTLASS_INCLUDE})
target_link_libraries(radial_hopper PRIVATE CUDA::cudart)
target_compile_options(radial_hopper PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -lineinfo>
  -O3)
target_sources(radial PRIVATE $<TARGET_OBJECTS:radial_hopper>)
target_compile_definitions(radial PRIVATE RADIAL_WITH_HOPPER=1)
