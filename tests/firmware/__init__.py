"""Tests of the bare-metal firmware: its build, its prebuilt images and their layout."""
