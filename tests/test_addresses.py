"""Teredo address decoding (RFC 4380 section 4) and internal-network classification."""

import ipaddress

import pytest
from hypothesis import given, strategies as st

from teredo_spike.addresses import Networks, decode_teredo, encode_teredo

KNOWN = [
    # RFC 4380 / Wikipedia worked example; also the address in Zeek's Teredo.pcap.
    ("2001:0:4137:9e50:8000:f12a:b9c8:2815", "65.55.158.80", 0x8000, "70.55.215.234", 3797),
    # nDPI's capture: server 194.136.28.76 (teredo.trex.fi).
    ("2001:0:c288:1c4c:0:ffff:ffff:ffff", "194.136.28.76", 0, "0.0.0.0", 0),
    ("2001::ffff:ffff:ffff", "0.0.0.0", 0, "0.0.0.0", 0),
    ("2001:0:0:0:ffff:ffff:ffff:ffff", "0.0.0.0", 0xFFFF, "0.0.0.0", 0),
]


@pytest.mark.parametrize("address,server,flags,mapped_ip,mapped_port", KNOWN)
def test_known_vectors(address, server, flags, mapped_ip, mapped_port):
    decoded = decode_teredo(address)
    assert decoded is not None
    assert (decoded.server, decoded.flags, decoded.mapped_ip, decoded.mapped_port) == (
        server, flags, mapped_ip, mapped_port)
    assert decoded.mapped == "%s:%d" % (mapped_ip, mapped_port)


@pytest.mark.parametrize("address", [
    "2001:db8::1",            # documentation prefix: inside 2001::/16, not Teredo
    "2001:1:4137:9e50::1",    # 2001:0001::/32 is not 2001:0000::/32
    "2002:c288:1c4c::c288:1c4c",  # 6to4
    "fe80::8000:ffff:ffff:fffd",
    "65.55.158.80", "", "2001:zz::1", "2001:",
])
def test_not_teredo(address):
    assert decode_teredo(address) is None


ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))


@given(server=ipv4, flags=st.integers(0, 0xFFFF), mapped_ip=ipv4, port=st.integers(0, 0xFFFF))
def test_encode_decode_round_trip(server, flags, mapped_ip, port):
    address = encode_teredo(server, flags, mapped_ip, port)
    assert ipaddress.IPv6Address(address) in ipaddress.IPv6Network("2001::/32")
    decoded = decode_teredo(address)
    assert (decoded.server, decoded.flags, decoded.mapped_ip, decoded.mapped_port) == (
        server, flags, mapped_ip, port)
    # Upper-case and fully written-out forms decode the same.
    assert decode_teredo(ipaddress.IPv6Address(address).exploded.upper()) == decoded


def test_default_internal_networks():
    nets = Networks.parse("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,169.254.0.0/16,"
                          "fc00::/7,fe80::/10")
    assert nets.contains("10.1.2.3") and nets.contains("172.31.255.255")
    assert nets.contains("100.64.0.1") and nets.contains("fd00::1")
    assert nets.contains("172.32.0.1") is False
    assert nets.contains("65.55.158.80") is False
    # 2001::/23 is "private" to Python's ipaddress, but it is not an internal network.
    assert nets.contains("2001:0:4137:9e50:8000:f12a:b9c8:2815") is False
    assert nets.contains("not-an-ip") is None


@pytest.mark.parametrize("text", ["10.0.0.0/33", "banana", "", " , "])
def test_bad_network_lists_are_refused(text):
    with pytest.raises(ValueError):
        Networks.parse(text)
