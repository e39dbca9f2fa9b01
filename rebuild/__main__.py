from rebuild.cli import main

main()
