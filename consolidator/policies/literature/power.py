"""SPECpower host power and CloudSim's energy rule, plus PABFD's power-increase score."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from consolidator.models.power import spec_watts
from consolidator.policies.literature._compile import jit

# SPECpower (W at 0, 10, ..., 100 % load), CloudSim 3.0.3 PowerModelSpecPowerHpProLiantMl110G4/G5.
HP_ML110_G4_WATTS = (86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0)
HP_ML110_G5_WATTS = (93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0)


# CloudSim's PowerModelSpecPower: the one SPECpower interpolator (models.power.spec_watts), compiled.
spec_power = jit(spec_watts)


@jit
def clamp_utilisation(utilisation: float) -> float:
    """CloudSim treats 100-101 % as 100 % (HostDynamicWorkload.getUtilizationOfCpu)."""
    if 1.0 < utilisation < 1.01:
        return 1.0
    return utilisation


@jit
def interval_energy_ws(table: npt.NDArray[np.float64], from_util: float, to_util: float,
                       seconds: float) -> float:
    """Energy of one host over an interval: the trapezoid of its power, 0 if it started idle."""
    if from_util == 0.0:
        return 0.0
    p_from = spec_power(table, from_util)
    p_to = spec_power(table, to_util)
    return (p_from + (p_to - p_from) / 2) * seconds


@jit
def power_increase(table: npt.NDArray[np.float64], watts_before: float, allocated_mips: float,
                   vm_mips: float, host_mips: float) -> float:
    """PABFD's score: power after adding the VM to what is allocated, minus the host's last power."""
    return spec_power(table, (allocated_mips + vm_mips) / host_mips) - watts_before
