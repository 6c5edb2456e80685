# Cross-compile musgen for 64-bit ARM Linux (Jetson, Graviton, Raspberry Pi OS 64-bit) from x86_64.
#
# With only Debian's `g++-aarch64-linux-gnu` installed this works as is. To build wheels that run
# on older systems (JetPack 5 has glibc 2.31), point MUSGEN_SYSROOT (environment or -D) at a root
# that holds an older cross GCC (usr/bin/aarch64-linux-gnu-g++-N) together with that
# distribution's aarch64 glibc and libstdc++ (usr/aarch64-linux-gnu/{include,lib}), and
# MUSGEN_GCC_SUFFIX at its version suffix ("-10"); tools/wheels.py sets one up from Debian 11.
#
# Python is not searched for here: the caller gives the target's headers (Python_INCLUDE_DIR) and
# extension suffix (Python_SOABI / SETUPTOOLS_EXT_SUFFIX), as tools/wheels.py does.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT DEFINED MUSGEN_SYSROOT AND DEFINED ENV{MUSGEN_SYSROOT})
  set(MUSGEN_SYSROOT "$ENV{MUSGEN_SYSROOT}")
endif()
if(NOT DEFINED MUSGEN_GCC_SUFFIX)
  set(MUSGEN_GCC_SUFFIX "$ENV{MUSGEN_GCC_SUFFIX}")
endif()

if(MUSGEN_SYSROOT)
  # GCC relocates itself from its own path, and --sysroot makes it take headers, glibc and
  # libstdc++ from the root rather than from the host's cross packages.
  set(CMAKE_SYSROOT "${MUSGEN_SYSROOT}")
  set(CMAKE_C_COMPILER "${MUSGEN_SYSROOT}/usr/bin/aarch64-linux-gnu-gcc${MUSGEN_GCC_SUFFIX}")
  set(CMAKE_CXX_COMPILER "${MUSGEN_SYSROOT}/usr/bin/aarch64-linux-gnu-g++${MUSGEN_GCC_SUFFIX}")
else()
  set(CMAKE_C_COMPILER "aarch64-linux-gnu-gcc${MUSGEN_GCC_SUFFIX}")
  set(CMAKE_CXX_COMPILER "aarch64-linux-gnu-g++${MUSGEN_GCC_SUFFIX}")
endif()

# CUDA (MUSGEN_ENABLE_CUDA=ON): nvcc compiles host code with the same cross GCC and root, and
# takes aarch64 headers and libcudart_static.a from targets/<MUSGEN_CUDA_TARGET_DIR> of its
# toolkit ("sbsa-linux" by default; NVIDIA's Jetson cross packages install "aarch64-linux").
if(NOT DEFINED MUSGEN_CUDA_TARGET_DIR)
  set(MUSGEN_CUDA_TARGET_DIR "$ENV{MUSGEN_CUDA_TARGET_DIR}")
endif()
if(NOT MUSGEN_CUDA_TARGET_DIR)
  set(MUSGEN_CUDA_TARGET_DIR "sbsa-linux")
endif()
set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}")
set(CMAKE_CUDA_FLAGS_INIT "-target-dir ${MUSGEN_CUDA_TARGET_DIR}")
if(MUSGEN_SYSROOT)
  string(APPEND CMAKE_CUDA_FLAGS_INIT " -Xcompiler=--sysroot=${MUSGEN_SYSROOT}")
  # CMake links CUDA test programs with the host compiler but without --sysroot.
  set(CMAKE_EXE_LINKER_FLAGS_INIT "--sysroot=${MUSGEN_SYSROOT}")
endif()

# Old symbol versions for the libm functions glibc renewed after 2.17 (see glibc-compat.h).
set(CMAKE_C_FLAGS_INIT "-include ${CMAKE_CURRENT_LIST_DIR}/glibc-compat.h")
set(CMAKE_CXX_FLAGS_INIT "-include ${CMAKE_CURRENT_LIST_DIR}/glibc-compat.h")
string(APPEND CMAKE_CUDA_FLAGS_INIT " -Xcompiler=-include,${CMAKE_CURRENT_LIST_DIR}/glibc-compat.h")

# libstdc++ and libgcc go into the module, so it needs no GLIBCXX_* newer than the target's;
# --exclude-libs keeps their symbols private to it (no clash with another copy in the process).
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL")

# pybind11 must not run the host's interpreter to learn the extension suffix (it would name the
# module *-x86_64-linux-gnu.so); it then takes SKBUILD_SOABI / Python_SOABI instead.
set(PYBIND11_USE_CROSSCOMPILING ON)

# Target libraries and headers from the root only; programs and CMake packages (pybind11) from
# the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
