# Build musgen for x86_64 Linux against an older glibc and libstdc++ than the host's, so the wheel
# qualifies for an old manylinux policy (auditwheel).
#
# MUSGEN_SYSROOT (environment or -D): a root holding a native GCC (usr/bin/g++-N) and that
# distribution's glibc and libstdc++ (usr/include, usr/lib, lib); MUSGEN_GCC_SUFFIX: the compiler's
# version suffix ("-10"). tools/wheels.py sets one up from Debian 11 (glibc 2.31, GCC 10).
# This is not a cross build: the host's Python, pybind11 and build tools are used as they are.
if(NOT DEFINED MUSGEN_SYSROOT)
  set(MUSGEN_SYSROOT "$ENV{MUSGEN_SYSROOT}")
endif()
if(NOT DEFINED MUSGEN_GCC_SUFFIX)
  set(MUSGEN_GCC_SUFFIX "$ENV{MUSGEN_GCC_SUFFIX}")
endif()
if(NOT MUSGEN_SYSROOT)
  message(FATAL_ERROR "x86_64-linux-gnu.cmake: set MUSGEN_SYSROOT to the root holding the older "
                      "GCC and glibc (see tools/wheels.py)")
endif()

set(CMAKE_SYSROOT "${MUSGEN_SYSROOT}")
set(CMAKE_C_COMPILER "${MUSGEN_SYSROOT}/usr/bin/gcc${MUSGEN_GCC_SUFFIX}")
set(CMAKE_CXX_COMPILER "${MUSGEN_SYSROOT}/usr/bin/g++${MUSGEN_GCC_SUFFIX}")
# nvcc runs the same GCC for host code, and CMake links CUDA programs with it without adding
# --sysroot: both must see the same root.
set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}")
set(CMAKE_CUDA_FLAGS_INIT "-Xcompiler=--sysroot=${MUSGEN_SYSROOT}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "--sysroot=${MUSGEN_SYSROOT}")

# Old symbol versions for the libm functions glibc renewed after 2.17 (see glibc-compat.h).
set(CMAKE_C_FLAGS_INIT "-include ${CMAKE_CURRENT_LIST_DIR}/glibc-compat.h")
set(CMAKE_CXX_FLAGS_INIT "-include ${CMAKE_CURRENT_LIST_DIR}/glibc-compat.h")
string(APPEND CMAKE_CUDA_FLAGS_INIT " -Xcompiler=-include,${CMAKE_CURRENT_LIST_DIR}/glibc-compat.h")

# libstdc++ and libgcc go into the module, so it needs no GLIBCXX_* newer than the target's;
# --exclude-libs keeps their symbols private to it (no clash with another copy in the process).
set(CMAKE_SHARED_LINKER_FLAGS_INIT "--sysroot=${MUSGEN_SYSROOT} -static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "--sysroot=${MUSGEN_SYSROOT} -static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL")
