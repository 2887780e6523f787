from qpmopt.cli import main

main()
