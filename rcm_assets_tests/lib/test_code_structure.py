"""Public code structure: CPT/HCPCS sections by code range or letter, ICD-10-CM and ICD-9-CM chapters."""

from __future__ import annotations

import pytest

from rcm_assets.lib import code_structure as S


@pytest.mark.parametrize(("code", "section"), [
    ("99202", "evaluation_management"), ("99499", "evaluation_management"), ("00100", "anesthesia"),
    ("01999", "anesthesia"), ("10004", "surgery"), ("69990", "surgery"), ("70010", "radiology"),
    ("79999", "radiology"), ("80047", "pathology_lab"), ("89398", "pathology_lab"), ("90281", "medicine"),
    ("99199", "medicine"), ("99500", "medicine"), ("99607", "medicine"), ("3074F", "cpt_category_ii"),
    ("0042T", "cpt_category_iii"), ("0001U", "cpt_pla"), ("J9271", "hcpcs_drugs"), ("A0428", "hcpcs_transport_supplies"),
    ("E0601", "hcpcs_dme"), ("G0439", "hcpcs_procedures_professional"), (" j3490 ", "hcpcs_drugs"),
    ("99999", "cpt_unassigned"), ("F1234", "unknown"), ("BAD", "unknown"), ("", "unknown"), (None, "unknown"),
])
def test_procedure_section_follows_the_public_code_ranges(code, section):
    assert S.procedure_section(code) == section


@pytest.mark.parametrize(("code", "subsection"), [
    ("10004", "surgery_integumentary"), ("27447", "surgery_musculoskeletal"), ("33016", "surgery_cardiovascular"),
    ("69990", "surgery_other"), ("70551", "radiology_diagnostic"), ("76506", "radiology_ultrasound"),
    ("82009", "lab_chemistry"), ("85025", "lab_hematology"), ("93000", "medicine_cardiovascular"),
    ("97110", "medicine_physical_medicine"), ("99213", "evaluation_management"), ("00100", "anesthesia"),
    ("0042T", "cpt_category_iii"), (" j9271 ", "hcpcs_drugs"), ("99999", "cpt_unassigned"), (None, "unknown"),
])
def test_procedure_subsection_refines_the_section_by_public_ranges(code, subsection):
    assert S.procedure_subsection(code) == subsection


@pytest.mark.parametrize(("code", "code_set", "chapter"), [
    ("I10", None, "circulatory"), ("E11.9", None, "endocrine"), ("O9A.212", None, "pregnancy"),
    ("S72.001A", None, "injury"), ("T36.0X5A", None, "injury"), ("Z00.00", None, "factors"), ("M1A0710", None,
                                                                                              "musculoskeletal"),
    ("4019", None, "circulatory"), ("250.00", None, "endocrine"), ("715.96", None, "musculoskeletal"),
    ("E880.9", None, "external"), ("V70.0", "icd9", "factors"), ("E8809", "icd9", "external"),
    ("E119", "icd10", "endocrine"), ("U99", None, "unknown"), ("XYZ", None, "unknown"), (None, None, "unknown"),
])
def test_icd_chapter_in_both_code_sets(code, code_set, chapter):
    assert S.icd_chapter(code, code_set) == chapter


def test_code_set_by_grammar():
    assert S.icd_code_set("4019") == "icd9" and S.icd_code_set("E880.9") == "icd9"
    assert S.icd_code_set("I10") == "icd10" and S.icd_code_set("12") is None
    assert len(S.PROCEDURE_SECTIONS) == len(set(S.PROCEDURE_SECTIONS)) < 255
