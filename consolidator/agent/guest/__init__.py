"""The test guest: Debian's cloud kernel, a busybox initramfs and our workload generator."""

from consolidator.agent.guest.build import GuestBuildError, GuestImage, build_guest, cache_root

__all__ = ["GuestBuildError", "GuestImage", "build_guest", "cache_root"]
