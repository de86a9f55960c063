"""Environments and promotion: releases flow from one environment to the next through gates."""
