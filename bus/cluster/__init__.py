"""Mechanism: the fleet. Which worker owns a key (ownership), and handing a request to it
or gathering a list from every worker (forwarding).
"""
