"""The ICC profile written when the source carries none.

DICOM requires an ICC profile for colour WSI (PS3.3 §C.8.12.5, ICC Profile 1C). Slides without
one are assumed to be sRGB, the assumption viewers make too. LittleCMS (through Pillow) builds
the profile; its header creation date and profile ID are fixed so that the bytes, and thus the
DICOM files, are identical on every run (ICC.1:2010 §7.2.1: date at bytes 24-35, profile ID at
84-99, all zero meaning "not computed").
"""

from __future__ import annotations

import functools
import struct

from PIL import ImageCms

_DATE_OFFSET = 24
_PROFILE_ID_OFFSET = 84
_PROFILE_ID_BYTES = 16
_FIXED_DATE = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)


@functools.cache
def srgb_profile() -> bytes:
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[_DATE_OFFSET : _DATE_OFFSET + len(_FIXED_DATE)] = _FIXED_DATE
    profile[_PROFILE_ID_OFFSET : _PROFILE_ID_OFFSET + _PROFILE_ID_BYTES] = bytes(_PROFILE_ID_BYTES)
    return bytes(profile)
