// Which compiled variant of the CPU kernels runs. The best one the processor supports is the
// default; tests force narrower ones so that every variant is checked on any machine.
#pragma once

namespace radial::cpu {

enum class Isa { best, avx512, avx2, baseline };

bool isa_supported(Isa isa);  // best and baseline always are
void force_isa(Isa isa);      // process-wide; best restores the default
Isa active_isa();             // never `best`: the variant that runs now

}  // namespace radial::cpu
