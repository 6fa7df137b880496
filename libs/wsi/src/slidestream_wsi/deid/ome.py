"""OME-XML (OME Data Model 2016-06) scrubbing for OME-TIFF ImageDescription.

Removes who and when: Experimenter, ExperimenterGroup and their references, Project/Dataset/
Folder groupings (their names are often case numbers), Description, AcquisitionDate, all
StructuredAnnotations and ROIs with their references, Rights; and removes naming attributes
(Image Name, SerialNumber, LotNumber, TiffData UUID FileName, person fields). Images other than
the first (the slide) are dropped with their IFDs, and TiffData IFD indices are renumbered.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slidestream_wsi.deid.audit import AuditRecorder
from slidestream_wsi.deid.xmltext import local_name, parse_xml, serialise_xml
from slidestream_wsi.errors import DeidentificationError

OME_REMOVED_ELEMENTS = frozenset(
    {
        "Experimenter",
        "ExperimenterGroup",
        "ExperimenterRef",
        "ExperimenterGroupRef",
        "Leader",
        "Project",
        "ProjectRef",
        "Dataset",
        "DatasetRef",
        "Folder",
        "FolderRef",
        "Description",
        "AcquisitionDate",
        "StructuredAnnotations",
        "AnnotationRef",
        "ROI",
        "ROIRef",
        "Rights",
        "Screen",
        "Plate",
        "MicrobeamManipulation",
        "MicrobeamManipulationRef",
    }
)
OME_REMOVED_ATTRIBUTES = frozenset(
    {
        "SerialNumber",
        "LotNumber",
        "FileName",
        "UserName",
        "FirstName",
        "MiddleName",
        "LastName",
        "Email",
        "Institution",
    }
)
# Elements whose Name attribute is removed (Channel names such as "DAPI" are kept).
OME_NAMED_ELEMENTS = frozenset({"OME", "Image", "Instrument", "Pixels", "Plane"})


def scrub_ome_xml(
    text: str, kept_image_count: int, ifd_renumbering: dict[int, int], audit: AuditRecorder
) -> str:
    """Scrubbed OME-XML keeping the first ``kept_image_count`` Images."""
    root = parse_xml(text)
    images = [child for child in root if local_name(child.tag) == "Image"]
    for image in images[kept_image_count:]:
        root.remove(image)
        audit.removed_field("ome.Image")
    _scrub(root, audit)
    for element in root.iter():
        if local_name(element.tag) == "TiffData":
            old = int(element.get("IFD", "0"))
            if old not in ifd_renumbering:
                raise DeidentificationError("OME TiffData refers to a removed IFD")
            element.set("IFD", str(ifd_renumbering[old]))
    return serialise_xml(root, text)


def _scrub(element: ET.Element, audit: AuditRecorder) -> None:
    for child in list(element):
        name = local_name(child.tag)
        if name in OME_REMOVED_ELEMENTS:
            for node in child.iter():
                for value in node.attrib.values():
                    audit.removed_value(value)
                if node.text:
                    audit.removed_value(node.text)
            audit.removed_field(f"ome.{name}")
            element.remove(child)
            continue
        _scrub(child, audit)
    name = local_name(element.tag)
    for attribute in list(element.attrib):
        attr_name = local_name(attribute)
        if attr_name in OME_REMOVED_ATTRIBUTES or (
            attr_name == "Name" and name in OME_NAMED_ELEMENTS
        ):
            audit.removed_field(f"ome.{name}.{attr_name}", element.attrib.pop(attribute))
