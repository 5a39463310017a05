import numpy as np
import pytest

from esmsim._errors import ParameterError
from esmsim.materials import MATERIALS, get_material


def test_licoo2_values_match_physics_md():
    m = get_material()
    assert m.name == "LiCoO2"
    # PHYSICS.md sec. 6
    assert m["c_max"] == 49943
    assert m["beta_a"] == pytest.approx(9.6e-8)
    assert m["beta_c"] == pytest.approx(-9.3e-7)
    assert m["E"] == 375e9 and m["nu"] == 0.2
    assert 5.4e-15 * 0.99 <= m["D_ab"] <= 1e-13
    assert m["D_c_over_D_ab"] <= 1e-3
    assert 0.5e-9 <= m["gb_width"] <= 1e-9


def test_vegard_coefficients_follow_from_lattice_data():
    # da/a = +0.25 %, dc/c = -2.41 % when x goes 0.5 -> 1, i.e. 0.5 * 51 600 mol/m^3 of Li added
    dc = 0.5 * 51600
    m = get_material()
    assert m["beta_a"] == pytest.approx(0.0025 / dc, rel=0.02)
    assert m["beta_c"] == pytest.approx(-0.0241 / dc, rel=0.02)
    # trace = volumetric coefficient, close to the partial molar volume -7.28e-7 m^3/mol (Ai2020)
    assert 3 * m.beta_isotropic == pytest.approx(-7.28e-7, rel=0.02)


@pytest.mark.parametrize("name", list(MATERIALS))
def test_every_value_has_unit_source_and_range(name):
    m = MATERIALS[name]
    for key, p in m.parameters.items():
        assert p.source, key
        assert p.description, key
        lo, hi = p.valid
        assert lo <= p.value <= hi, key
    assert m.principal_diffusivities().shape == (3,)
    assert np.all(m.principal_diffusivities() > 0)


def test_unknown_key_suggests_close_match():
    with pytest.raises(ParameterError, match=r"material\.D_abb: .*did you mean 'D_ab'"):
        get_material("LiCoO2").replace(D_abb=1e-14)


def test_unknown_material_suggests():
    with pytest.raises(ParameterError, match="did you mean 'LiCoO2'"):
        get_material("LiCoO3")


def test_out_of_range_names_field_value_and_range():
    with pytest.raises(ParameterError, match=r"material\.D_ab: got -1e-14 m\*\*2/s; allowed range is \["):
        get_material().replace(D_ab=-1e-14)
    with pytest.raises(ParameterError, match="expected a number"):
        get_material().replace(nu="0.3")


def test_replace_is_a_one_line_modified_copy():
    base = get_material("LiCoO2")
    new = base.replace(D_ab=1e-14, gb_enhancement=10.0)
    assert new["D_ab"] == 1e-14 and new["gb_enhancement"] == 10.0
    assert base["D_ab"] == 5.387e-15  # original untouched
    assert new.D_gb == pytest.approx(1e-13)
    assert new.parameters["D_ab"].source == "user override"


def test_symmetry_specific_keys():
    lmo = get_material("limn2o4")
    assert np.allclose(lmo.principal_diffusivities(), lmo["D"], atol=0)
    lfp = get_material("LiFePO4")
    assert np.argmax(lfp.principal_diffusivities()) == 1  # fast b channels
    assert get_material().dU_dc == pytest.approx(1.0 / 49943)


def test_materials_pickle_for_worker_processes():
    import pickle

    from esmsim.materials import get_material

    m = get_material("LiCoO2").replace(D_ab=1e-14)
    back = pickle.loads(pickle.dumps(m))
    assert back == m and back["D_ab"] == 1e-14 and back.parameters["D_ab"].source == "user override"
